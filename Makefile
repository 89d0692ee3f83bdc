# pod runtime: pause + launcher. `make help` lists the targets.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
REL := target/$(TARGET)/release
PAUSE := $(REL)/pause
PAUSE_BUDGET := 16384
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

APT_PACKAGES := qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio file procps iproute2 \
	util-linux tini dumb-init catatonit podman runc crun umoci hyperfine python3-venv \
	containernetworking-plugins iptables kmod
# Kubernetes' OpenAPI schemas and a strict validator, for the schema tests; grpcio's
# health service, the server the gRPC probe tests check.
VENV := build/venv
PIP_PACKAGES := kubernetes-validate==1.37.0 grpcio-health-checking==1.85.1

.PHONY: help deps build test unit host-test vm-test image demo bench lint clean install

help:
	@echo "make deps       install what the build and the tests need (apt, rustup target)"
	@echo "make build      build pause (static, <= $(PAUSE_BUDGET) bytes) and the launcher"
	@echo "make test       unit + host tier + VM tier (cgroup v2 controllers under qemu)"
	@echo "make demo       run a pod end to end"
	@echo "make image      build the pause OCI image archive (build/pause-image.tar)"
	@echo "make bench      pause and launcher figures side by side with their peers"
	@echo "make install    launcher, pause, man pages, completions under PREFIX (/usr/local)"

deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	@$(VENV)/bin/python3 -c 'import kubernetes_validate, grpc_health.v1.health' 2>/dev/null || \
		{ python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check $(PIP_PACKAGES); }

build: deps
	$(CARGO) build --release --workspace --bins
	@size=$$(stat -c %s $(PAUSE)); \
	if [ $$size -gt $(PAUSE_BUDGET) ]; then echo "pause is $$size bytes, over the $(PAUSE_BUDGET) budget" >&2; exit 1; fi; \
	if ! file $(PAUSE) | grep -q 'statically linked'; then echo "pause is not statically linked" >&2; exit 1; fi; \
	echo "pause: $$size bytes, static"

test: lint unit host-test vm-test

unit: deps
	$(CARGO) test --workspace --exclude pod-tests

host-test: build image
	POD_BIN_DIR=$(CURDIR)/$(REL) KUBERNETES_VALIDATE=$(CURDIR)/$(VENV)/bin/kubernetes-validate \
		$(CARGO) test -p pod-tests

# The integration tests, built static, run inside the VM with --include-ignored; but
# the schema tests, whose validator is Python, which the VM does not have.
vm-test: build image
	@bins=$$($(CARGO) test -p pod-tests --no-run 2>&1 | grep -v 'tests/schema.rs' | sed -n 's/.*Executable tests\/.*(\(.*\))$$/\1/p'); \
	[ -n "$$bins" ] || { echo "no test binaries found" >&2; exit 1; }; \
	VM_IMAGE=$(CURDIR)/build/pause-image.tar vm/run.sh $(CURDIR)/$(REL) $$bins

image: build
	image/build.sh $(PAUSE) build/pause-image.tar

# On the host when its cgroup2 offers memory and pids; else in the VM, where it does.
demo: build
	@mount=$$(awk '$$9 == "cgroup2" {print $$5; exit}' /proc/self/mountinfo); \
	if grep -qw memory "$$mount/cgroup.controllers" 2>/dev/null && grep -qw pids "$$mount/cgroup.controllers"; then \
		scripts/demo.sh $(CURDIR)/$(REL); \
	else \
		echo "This machine's cgroup2 ($$mount) has no memory/pids controllers: running the demo in the VM."; \
		VM_RUN=demo VM_TIMEOUT=300 vm/run.sh $(CURDIR)/$(REL) | sed -e '/^vm-test: booting/d' -e '/^VM-TEST/d' -e '/reboot: Power down/d'; \
	fi

bench: build
	@bench/run.sh $(CURDIR)/$(REL)
	@bench/scale.sh $(CURDIR)/$(REL)
	@bench/network.sh $(CURDIR)/$(REL)

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(REL)/launcher $(REL)/pause $(DESTDIR)$(PREFIX)/bin/
	$(REL)/launcher man $(DESTDIR)$(PREFIX)/share/man/man1
	$(REL)/launcher completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/launcher
	$(REL)/launcher completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_launcher
	$(REL)/launcher completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/launcher.fish

clean:
	$(CARGO) clean
	rm -rf build
