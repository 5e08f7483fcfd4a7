# The one install path, used by the test bed, debian/rules and the rpm spec alike.
#   make                 build release binaries
#   make install DESTDIR=/stage PREFIX=/usr
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec/containerctl
SYSTEMDDIR ?= $(PREFIX)/lib/systemd
UNITDIR ?= $(SYSTEMDDIR)/system
GENERATORDIR ?= $(SYSTEMDDIR)/system-generators
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/containerctl
SYSCONFDIR ?= /etc
CARGO ?= cargo
GO_MD2MAN ?= go-md2man
TARGET_DIR ?= target/release

BINARIES = containerctl containerctld containerctl-generator containerctl-runner
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
# Debian's zsh reads vendor-completions; Fedora's reads site-functions (rpm/containerctl.spec).
ZSHCOMPDIR ?= $(DATADIR)/zsh/vendor-completions

.PHONY: all build install uninstall check clean

all: build

build:
	$(CARGO) build --release --locked

install:
	@for b in $(BINARIES); do \
	  test -x $(TARGET_DIR)/$$b || { echo "error: $(TARGET_DIR)/$$b is missing: run make first" >&2; exit 1; }; \
	done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(GENERATORDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(TARGET_DIR)/containerctl $(DESTDIR)$(BINDIR)/containerctl
	install -m 0755 $(TARGET_DIR)/containerctld $(DESTDIR)$(SBINDIR)/containerctld
	install -m 0755 $(TARGET_DIR)/containerctl-runner $(DESTDIR)$(LIBEXECDIR)/containerctl-runner
	install -m 0755 $(TARGET_DIR)/containerctl-generator $(DESTDIR)$(GENERATORDIR)/containerctl-generator
	sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' units/containerctl@.service.in > $(DESTDIR)$(UNITDIR)/containerctl@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/containerctl@.service
	install -m 0644 units/containerctl.slice $(DESTDIR)$(UNITDIR)/containerctl.slice
	install -m 0644 units/containerctl-update@.timer $(DESTDIR)$(UNITDIR)/containerctl-update@.timer
	sed 's|@BINDIR@|$(BINDIR)|g' units/containerctl-update@.service.in > $(DESTDIR)$(UNITDIR)/containerctl-update@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/containerctl-update@.service
	install -m 0644 units/containerctl-registry.service $(DESTDIR)$(UNITDIR)/containerctl-registry.service
	sed 's|@SBINDIR@|$(SBINDIR)|g' units/containerctld.service.in > $(DESTDIR)$(UNITDIR)/containerctld.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/containerctld.service
	install -m 0644 packaging/containerctl.sysusers $(DESTDIR)$(SYSUSERSDIR)/containerctl.conf
	install -m 0644 packaging/containerctl.tmpfiles $(DESTDIR)$(TMPFILESDIR)/containerctl.conf
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(ZSHCOMPDIR) \
	  $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	$(TARGET_DIR)/containerctl completions bash > $(DESTDIR)$(DATADIR)/bash-completion/completions/containerctl
	$(TARGET_DIR)/containerctl completions zsh > $(DESTDIR)$(ZSHCOMPDIR)/_containerctl
	$(TARGET_DIR)/containerctl completions fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/containerctl.fish
	@# The admin's configuration is never overwritten.
	@if [ -f packaging/containerctl.toml ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/containerctl/containerctl.toml ]; then \
	  install -D -m 0644 packaging/containerctl.toml $(DESTDIR)$(SYSCONFDIR)/containerctl/containerctl.toml; fi
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/containerctl/units $(DESTDIR)$(SYSCONFDIR)/containerctl/cluster
	install -d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(MANDIR)/man5
	install -m 0644 examples/*.toml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/
	@# The OpenAPI document of the HTTP API, generated from the code (GET /api/v1/openapi.json
	@# serves the same); data, not a doc: dh_compress would gzip it under /usr/share/doc.
	install -d $(DESTDIR)$(DATADIR)/containerctl
	$(TARGET_DIR)/containerctld openapi > $(DESTDIR)$(DATADIR)/containerctl/openapi.json
	chmod 0644 $(DESTDIR)$(DATADIR)/containerctl/openapi.json
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	@# Rendered, never left as markdown: the units' Documentation=man:... must resolve.
	@command -v $(GO_MD2MAN) >/dev/null || { echo "error: $(GO_MD2MAN) not found: install go-md2man (apt install go-md2man, dnf install go-md2man) to render the man pages" >&2; exit 1; }
	@for page in docs/*.[0-9].md; do \
	  base=$$(basename $$page .md); section=$${base##*.}; \
	  $(GO_MD2MAN) -in $$page -out $(DESTDIR)$(MANDIR)/man$$section/$$base || exit 1; \
	  chmod 0644 $(DESTDIR)$(MANDIR)/man$$section/$$base; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/containerctl $(DESTDIR)$(SBINDIR)/containerctld $(DESTDIR)$(LIBEXECDIR)/containerctl-runner \
	  $(DESTDIR)$(UNITDIR)/containerctld.service $(DESTDIR)$(SYSUSERSDIR)/containerctl.conf \
	  $(DESTDIR)$(TMPFILESDIR)/containerctl.conf \
	  $(DESTDIR)$(GENERATORDIR)/containerctl-generator $(DESTDIR)$(UNITDIR)/containerctl@.service \
	  $(DESTDIR)$(UNITDIR)/containerctl.slice $(DESTDIR)$(UNITDIR)/containerctl-registry.service $(DESTDIR)$(MANDIR)/man5/containerctl.unit.5 \
	  $(DESTDIR)$(UNITDIR)/containerctl-update@.service $(DESTDIR)$(UNITDIR)/containerctl-update@.timer \
	  $(DESTDIR)$(MANDIR)/man5/containerctl.toml.5 $(DESTDIR)$(MANDIR)/man1/containerctl.1 \
	  $(DESTDIR)$(MANDIR)/man8/containerctld.8 \
	  $(DESTDIR)$(DATADIR)/bash-completion/completions/containerctl \
	  $(DESTDIR)$(ZSHCOMPDIR)/_containerctl \
	  $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/containerctl.fish
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)/containerctl

check:
	$(CARGO) test --locked

clean:
	$(CARGO) clean
