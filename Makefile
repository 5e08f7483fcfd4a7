# The one install path, used by the test bed, debian/rules and the rpm spec alike.
#   make                 build release binaries
#   make install DESTDIR=/stage PREFIX=/usr
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/containerctl
SYSTEMDDIR ?= $(PREFIX)/lib/systemd
UNITDIR ?= $(SYSTEMDDIR)/system
GENERATORDIR ?= $(SYSTEMDDIR)/system-generators
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/containerctl
SYSCONFDIR ?= /etc
CARGO ?= cargo
TARGET_DIR ?= target/release

BINARIES = containerctl containerctl-generator containerctl-runner

.PHONY: all build install uninstall check clean

all: build

build:
	$(CARGO) build --release --locked

install:
	@for b in $(BINARIES); do \
	  test -x $(TARGET_DIR)/$$b || { echo "error: $(TARGET_DIR)/$$b is missing: run make first" >&2; exit 1; }; \
	done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(GENERATORDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(TARGET_DIR)/containerctl $(DESTDIR)$(BINDIR)/containerctl
	install -m 0755 $(TARGET_DIR)/containerctl-runner $(DESTDIR)$(LIBEXECDIR)/containerctl-runner
	install -m 0755 $(TARGET_DIR)/containerctl-generator $(DESTDIR)$(GENERATORDIR)/containerctl-generator
	sed 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' units/containerctl@.service.in > $(DESTDIR)$(UNITDIR)/containerctl@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/containerctl@.service
	install -m 0644 units/containerctl.slice $(DESTDIR)$(UNITDIR)/containerctl.slice
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/containerctl/units
	install -d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(MANDIR)/man5
	install -m 0644 examples/*.toml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/
	@if command -v go-md2man >/dev/null; then \
	  go-md2man -in docs/containerctl.unit.5.md -out $(DESTDIR)$(MANDIR)/man5/containerctl.unit.5; \
	else echo "note: go-md2man not found; man page installed as markdown in $(DOCDIR)"; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/containerctl $(DESTDIR)$(LIBEXECDIR)/containerctl-runner \
	  $(DESTDIR)$(GENERATORDIR)/containerctl-generator $(DESTDIR)$(UNITDIR)/containerctl@.service \
	  $(DESTDIR)$(UNITDIR)/containerctl.slice $(DESTDIR)$(MANDIR)/man5/containerctl.unit.5
	rm -rf $(DESTDIR)$(DOCDIR)

check:
	$(CARGO) test --locked

clean:
	$(CARGO) clean
