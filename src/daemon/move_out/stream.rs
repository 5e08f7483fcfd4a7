//! The source's data stream to the target: a warm move's first pass, the begin, the stream of a
//! pass (resumed up to [`RESUMES`] times after a break, sending only what the target does not
//! have whole), the delta, and the commit.

use super::*;

impl Daemon {
    /// A warm move's first pass, while the unit runs: walk, begin, send everything.
    pub(super) async fn first_pass(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        p: &Progress,
        moved_id: &mut Option<String>,
        rec: Option<i64>,
    ) -> Result<FirstPass, MoveFailure> {
        let walked_at_ns = i128::from(crate::time::now_ns());
        let (manifest, stamps) =
            Self::walk_stamped(&plan.roots).await.map_err(|b| failed("warm copy", b.join("; "), ""))?;
        let begun = self.begin(client, plan, &manifest, true).await?;
        *moved_id = Some(begun.clone());
        // A restart during this pass tells the target to give it up (nothing was stopped).
        Journal {
            rec,
            resume: Resume { move_id: Some(begun.clone()), ..Resume::default() },
            commit_unanswered: false,
        }
        .save(self);
        let seen = Arc::new(std::sync::Mutex::new(Sums::new()));
        let packed = self
            .send_data(client, plan, p, &begun, &manifest, Mode::Warm, "warm copy", &seen)
            .await
            .map_err(SendError::failure)?;
        let mut first = FirstPass { dirty: packed.dirty, walked_at_ns, ..FirstPass::default() };
        let mut sums = packed.sums.into_iter();
        for (i, v) in manifest.volumes.iter().enumerate() {
            for e in v.entries.iter().filter(|e| e.kind == Kind::File) {
                let key = (i, e.path.clone());
                if let (Some(sum), Some(stamp)) = (sums.next(), stamps.get(i).and_then(|s| s.get(&e.path))) {
                    first.sums.insert(key.clone(), sum);
                    first.stamps.insert(key, *stamp);
                }
            }
        }
        Ok(first)
    }

    async fn begin(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        manifest: &Manifest,
        warm: bool,
    ) -> Result<String, MoveFailure> {
        let revisions = self.move_history(&plan.name);
        let mut offer = plan.offer.clone();
        offer.bytes = manifest.bytes();
        offer.files = manifest.files() as u64;
        let begin = MoveBegin { offer, manifest: manifest.clone(), revisions, warm };
        let begun: MoveBegun =
            peer_json(client, &plan.target, http::Method::POST, "/cluster/v1/moves", &begin)
                .await
                .map_err(|e| failed("begin", e, ""))?;
        Ok(begun.id)
    }

    /// Sends the data of `manifest` for move `id`; a step of its own with progress.
    #[allow(clippy::too_many_arguments)]
    async fn send_data(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        p: &Progress,
        id: &str,
        manifest: &Manifest,
        mode: Mode,
        step: &'static str,
        seen: &Arc<std::sync::Mutex<Sums>>,
    ) -> Result<Packed, SendError> {
        let target = &plan.target;
        let total = match &mode {
            Mode::Delta(reuse) => manifest.bytes() - manifest_bytes_of(manifest, reuse),
            Mode::Strict | Mode::Warm => manifest.bytes(),
        };
        let files = manifest.files()
            - match &mode {
                Mode::Delta(reuse) => reuse.len(),
                Mode::Strict | Mode::Warm => 0,
            };
        p.step(
            step,
            "running",
            format!("copying {} MB in {files} files to {}", total >> 20, target.hostname),
        );
        let sent = Arc::new(AtomicU64::new(0));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let roots: Vec<PathBuf> = plan.roots.iter().map(|(_, r)| r.clone()).collect();
        let counter = sent.clone();
        let manifest = manifest.clone();
        let seen = seen.clone();
        let packing = tokio::task::spawn_blocking(move || {
            let refs: Vec<&std::path::Path> = roots.iter().map(PathBuf::as_path).collect();
            let out = pipe::ChannelWriter::new(tx);
            let pass = match &mode {
                Mode::Strict => source::Pass::Strict,
                Mode::Warm => source::Pass::Warm,
                Mode::Delta(reuse) => source::Pass::Delta(reuse),
            };
            source::pack_with(
                &manifest,
                &refs,
                out,
                &mut |k| {
                    counter.fetch_add(k, Ordering::Relaxed);
                },
                &pass,
                Some(&seen),
            )
        });
        let body = BodyExt::boxed_unsync(http_body_util::StreamBody::new(
            tokio_stream_from(rx).map(|r| r.map(hyper::body::Frame::data)),
        ));
        let path = format!("/cluster/v1/moves/{id}/data");
        let ticker = {
            let (sent, p, to) = (sent.clone(), p.clone(), target.hostname.clone());
            tokio::spawn(async move {
                let t0 = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let cur = sent.load(Ordering::Relaxed);
                    let rate = cur as f64 / t0.elapsed().as_secs_f64().max(0.001) / 1048576.0;
                    p.transfer(
                        step,
                        format!("{} of {} MB to {to}, {rate:.1} MB/s", cur >> 20, total >> 20),
                        cur,
                        total,
                    );
                }
            })
        };
        let answer =
            send(client, target, http::Method::PUT, &path, ("application/x-tar", body), STREAM_TIMEOUT).await;
        ticker.abort();
        let packed = packing.await.map_err(|e| SendError::Failed(failed(step, e.to_string(), "")))?;
        // What went wrong here first: a refusal there may only say the stream ended early.
        if let Err(e) = &packed {
            if !matches!(e, source::PackError::Write(_)) {
                return Err(SendError::Failed(failed(step, format!("on {}: {e}", plan.offer.source), "")));
            }
        }
        let answer = answer.map_err(|e| {
            SendError::Broken(failed(step, format!("the stream to {} broke: {e}", target.hostname), ""))
        })?;
        if !(200..300).contains(&answer.status) {
            let f = failed(
                step,
                format!("{} refused the data: {}", target.hostname, cluster_ops::error_message(&answer.body)),
                "",
            );
            // 503: the target kept what arrived whole for a resumed pass.
            return Err(if answer.status == 503 { SendError::Broken(f) } else { SendError::Failed(f) });
        }
        let packed = packed.map_err(|e| SendError::Failed(failed(step, e.to_string(), "")))?;
        p.transfer(
            step,
            format!("{} of {} MB to {}", total >> 20, total >> 20, target.hostname),
            total,
            total,
        );
        p.step(step, "done", format!("{} MB copied to {}", total >> 20, target.hostname));
        Ok(packed)
    }

    /// Sends the data after the stop; a stream that breaks is resumed (up to [`RESUMES`] times):
    /// the target says which files arrived whole, those whose sum equals what was read here are
    /// not sent again (a delta), the rest is.
    async fn send_resuming(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        p: &Progress,
        id: &str,
        manifest: &Manifest,
        mut mode: Mode,
    ) -> Result<Packed, MoveFailure> {
        let seen = Arc::new(std::sync::Mutex::new(Sums::new()));
        let mut attempt = 0;
        loop {
            if let Mode::Delta(reuse) = &mode {
                if let Ok(mut s) = seen.lock() {
                    s.extend(reuse.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            let f = match self.send_data(client, plan, p, id, manifest, mode.clone(), "copy", &seen).await {
                Ok(packed) => return Ok(packed),
                Err(SendError::Failed(f)) => return Err(f),
                Err(SendError::Broken(f)) if attempt >= RESUMES => return Err(f),
                Err(SendError::Broken(f)) => f,
            };
            attempt += 1;
            tokio::time::sleep(Duration::from_secs(attempt.into())).await;
            let path = format!("/cluster/v1/moves/{id}");
            let have = match client.request(&plan.target.api(), http::Method::GET, &path, &[], None).await {
                Ok((200, body)) => {
                    serde_json::from_slice::<HaveAnswer>(&body).map(|h| h.have).unwrap_or_default()
                }
                Ok((status, body)) => {
                    return Err(failed(
                        "copy",
                        format!(
                            "{}; it cannot be resumed ({status}: {})",
                            f.message,
                            cluster_ops::error_message(&body)
                        ),
                        "",
                    ))
                }
                Err(e) => {
                    return Err(failed("copy", format!("{}; it cannot be resumed: {e}", f.message), ""))
                }
            };
            let known = seen.lock().map(|s| s.clone()).unwrap_or_default();
            let reuse: Sums = have
                .into_iter()
                .filter(|h| known.get(&(h.volume, h.path.clone())) == Some(&h.sum))
                .map(|h| ((h.volume, h.path), h.sum))
                .collect();
            let kept = manifest_bytes_of(manifest, &reuse);
            p.step(
                "copy",
                "running",
                format!(
                    "{}; resuming ({attempt} of {RESUMES}): {} MB in {} files arrived whole and are not sent again",
                    f.message,
                    kept >> 20,
                    reuse.len()
                ),
            );
            let delta = MoveDelta {
                manifest: manifest.clone(),
                reuse: reuse.keys().map(|(v, path)| MoveReused { volume: *v, path: path.clone() }).collect(),
            };
            let path = format!("/cluster/v1/moves/{id}/delta");
            peer_json::<_, serde_json::Value>(client, &plan.target, http::Method::POST, &path, &delta)
                .await
                .map_err(|e| failed("copy", format!("{}; resuming failed: {e}", f.message), ""))?;
            mode = Mode::Delta(reuse);
        }
    }

    /// After the stop: walk, begin (or the delta of a warm move), send, commit. The bytes sent.
    pub(super) async fn transfer_and_commit(
        &self,
        client: &tls::Client,
        plan: &MovePlan,
        p: &Progress,
        moved_id: &mut Option<String>,
        first: Option<FirstPass>,
        journal: &mut Journal,
    ) -> Result<u64, MoveFailure> {
        let target = &plan.target;
        // The unit is stopped: this walk is what is sent.
        let (manifest, stamps) =
            Self::walk_stamped(&plan.roots).await.map_err(|b| failed("copy", b.join("; "), ""))?;
        let (id, mode) = match (&first, moved_id.clone()) {
            (Some(first), Some(id)) => {
                let reuse = first.reusable(&manifest, &stamps);
                let delta = MoveDelta {
                    manifest: manifest.clone(),
                    reuse: reuse
                        .keys()
                        .map(|(v, path)| MoveReused { volume: *v, path: path.clone() })
                        .collect(),
                };
                let path = format!("/cluster/v1/moves/{id}/delta");
                peer_json::<_, serde_json::Value>(client, target, http::Method::POST, &path, &delta)
                    .await
                    .map_err(|e| failed("delta", e, ""))?;
                (id, Mode::Delta(reuse))
            }
            _ => {
                let roots: Vec<PathBuf> = plan.roots.iter().map(|(_, r)| r.clone()).collect();
                let resumed = self
                    .resume_interrupted(client, target, &plan.name, &plan.text, &manifest, &roots, p)
                    .await;
                let (id, mode) = match resumed {
                    Some((id, reuse)) => (id, Mode::Delta(reuse)),
                    None => (self.begin(client, plan, &manifest, false).await?, Mode::Strict),
                };
                *moved_id = Some(id.clone());
                (id, mode)
            }
        };
        journal.resume.move_id = Some(id.clone());
        journal.save(self);
        let packed = self.send_resuming(client, plan, p, &id, &manifest, mode).await?;
        let sent = packed.bytes;
        let sums = packed.sums;
        p.step("start", "running", format!("verifying and starting {} on {}", plan.name, target.hostname));
        let commit_timeout = crate::generator::start_timeout(&plan.unit) + Duration::from_secs(120);
        let body =
            serde_json::to_vec(&MoveCommit { sums }).map_err(|e| failed("commit", e.to_string(), ""))?;
        let full = http_body_util::Full::new(Bytes::from(body))
            .map_err(|never: std::convert::Infallible| -> std::io::Error { match never {} })
            .boxed_unsync();
        let path = format!("/cluster/v1/moves/{id}/commit");
        // From here the target may run the unit: a restart asks it before anything starts here.
        journal.step(self, "commit");
        let answer =
            send(client, target, http::Method::POST, &path, ("application/json", full), commit_timeout).await;
        // Test-only: the moment a crash is hardest to settle (the target answered, unread).
        crate::daemon::move_in::test_hook("CONTAINERCTLD_TEST_ABORT_AFTER_COMMIT", "after the commit");
        let answer = answer.map_err(|e| {
            journal.commit_unanswered = true;
            failed("start", format!("{} did not answer: {e}", target.hostname), "")
        })?;
        if !(200..300).contains(&answer.status) {
            *moved_id = None;
            return Err(failed(
                "start",
                format!("on {}: {}", target.hostname, cluster_ops::error_message(&answer.body)),
                "",
            ));
        }
        let detail: String = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_default();
        journal.step(self, "committed");
        p.step("start", "done", detail);
        Ok(sent)
    }
}

/// How often a broken stream after the stop is resumed before the move fails.
const RESUMES: u32 = 3;

/// Each file's sum, by volume and path.
pub(super) type Sums = std::collections::HashMap<transfer::FileKey, String>;

/// `GET /cluster/v1/moves/ID`: what the target has whole.
#[derive(serde::Deserialize)]
struct HaveAnswer {
    have: Vec<crate::wire::MoveHave>,
}

/// A pass that failed: the stream broke (resumable) or anything else.
pub(super) enum SendError {
    Broken(MoveFailure),
    Failed(MoveFailure),
}

impl SendError {
    fn failure(self) -> MoveFailure {
        match self {
            SendError::Broken(f) | SendError::Failed(f) => f,
        }
    }
}

/// How a pass reads the files (an owned [`source::Pass`] for the packing thread).
#[derive(Clone)]
pub(super) enum Mode {
    Strict,
    Warm,
    Delta(std::collections::HashMap<transfer::FileKey, String>),
}

/// The bytes of the files of `manifest` listed in `keys`.
fn manifest_bytes_of<V>(manifest: &Manifest, keys: &std::collections::HashMap<transfer::FileKey, V>) -> u64 {
    manifest
        .volumes
        .iter()
        .enumerate()
        .flat_map(|(i, v)| v.entries.iter().map(move |e| (i, e)))
        .filter(|(i, e)| e.kind == Kind::File && keys.contains_key(&(*i, e.path.clone())))
        .map(|(_, e)| e.size)
        .sum()
}

/// A request to the target with a streamed body of a content type.
pub(super) async fn send(
    client: &tls::Client,
    target: &PeerNode,
    method: http::Method,
    path: &str,
    (content_type, body): (&str, tls::StreamBody),
    timeout: Duration,
) -> Result<tls::Answer, tls::TlsError> {
    client
        .send_body(&target.api(), method, path, &[("content-type", content_type.into())], body, timeout)
        .await
}

fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
