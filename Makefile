# pod runtime: pause + launcher. `make help` lists the targets.
SHELL := /bin/bash
TARGET := x86_64-unknown-linux-musl
REL := target/$(TARGET)/release
PAUSE := $(REL)/pause
PAUSE_BUDGET := 16384
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

# The test bed: what `make test` and `make bench` need beyond the Rust toolchain. Building
# and installing need only the toolchain (`make install`, `make deb`).
APT_PACKAGES := qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio file procps iproute2 \
	util-linux tini dumb-init catatonit podman runc crun umoci hyperfine python3-venv \
	containernetworking-plugins iptables kmod tmux containerd
# Kubernetes' OpenAPI schemas and a strict validator, for the schema tests; grpcio's
# health service, the server the gRPC probe tests check.
VENV := build/venv
PIP_PACKAGES := kubernetes-validate==1.37.0 grpcio-health-checking==1.85.1

.PHONY: help toolchain deps build test unit host-test vm-test image demo bench lint clean install \
	uninstall deb

help:
	@echo "make deps       install what the build and the tests need (apt, rustup target)"
	@echo "make build      build pause (static, <= $(PAUSE_BUDGET) bytes) and the launcher"
	@echo "make test       unit + host tier + VM tier (cgroup v2 controllers under qemu)"
	@echo "make demo       run a pod end to end"
	@echo "make image      build the pause OCI image archive (build/pause-image.tar)"
	@echo "make bench      pause and launcher figures side by side with their peers"
	@echo "make install    launcher, pause, man pages, completions under PREFIX (/usr/local);"
	@echo "                needs only the Rust toolchain (DESTDIR for staging)"
	@echo "make uninstall  remove what make install put under PREFIX"
	@echo "make deb        a Debian package of the same files: build/pod-launcher_VERSION_amd64.deb"

# The Rust side only: the musl target and the lint components, through rustup.
toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
	@if command -v rustup >/dev/null; then \
		rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET); \
	fi

deps: toolchain
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
	@$(VENV)/bin/python3 -c 'import kubernetes_validate, grpc_health.v1.health' 2>/dev/null || \
		{ python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check $(PIP_PACKAGES); }

# ldd fails on a static executable ("not a dynamic executable"); libc-bin is everywhere.
build: toolchain
	$(CARGO) build --release --workspace --bins
	@size=$$(stat -c %s $(PAUSE)); \
	if [ $$size -gt $(PAUSE_BUDGET) ]; then echo "pause is $$size bytes, over the $(PAUSE_BUDGET) budget" >&2; exit 1; fi; \
	if ldd $(PAUSE) >/dev/null 2>&1 || ldd $(REL)/launcher >/dev/null 2>&1; then \
		echo "pause or launcher is not statically linked" >&2; exit 1; fi; \
	echo "pause: $$size bytes, static"

test: lint unit host-test vm-test

unit: deps
	$(CARGO) test --workspace --exclude pod-tests

host-test: deps build image
	POD_BIN_DIR=$(CURDIR)/$(REL) KUBERNETES_VALIDATE=$(CURDIR)/$(VENV)/bin/kubernetes-validate \
		$(CARGO) test -p pod-tests

# The integration tests, built static, run inside the VM with --include-ignored; but
# the schema tests, whose validator is Python, which the VM does not have.
vm-test: deps build image
	@bins=$$($(CARGO) test -p pod-tests --no-run 2>&1 | grep -v 'tests/schema.rs' | sed -n 's/.*Executable tests\/.*(\(.*\))$$/\1/p'); \
	[ -n "$$bins" ] || { echo "no test binaries found" >&2; exit 1; }; \
	VM_IMAGE=$(CURDIR)/build/pause-image.tar vm/run.sh $(CURDIR)/$(REL) $$bins

image: deps build
	image/build.sh $(PAUSE) build/pause-image.tar

# On the host when its cgroup2 offers memory and pids; else in the VM, where it does.
demo: deps build
	@mount=$$(awk '$$9 == "cgroup2" {print $$5; exit}' /proc/self/mountinfo); \
	if grep -qw memory "$$mount/cgroup.controllers" 2>/dev/null && grep -qw pids "$$mount/cgroup.controllers"; then \
		scripts/demo.sh $(CURDIR)/$(REL); \
	else \
		echo "This machine's cgroup2 ($$mount) has no memory/pids controllers: running the demo in the VM."; \
		VM_RUN=demo VM_TIMEOUT=300 vm/run.sh $(CURDIR)/$(REL) | sed -e '/^vm-test: booting/d' -e '/^VM-TEST/d' -e '/reboot: Power down/d'; \
	fi

bench: deps build
	@bench/run.sh $(CURDIR)/$(REL)
	@bench/scale.sh $(CURDIR)/$(REL)
	@bench/network.sh $(CURDIR)/$(REL)

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

PREFIX ?= /usr/local
install: build
	scripts/install.sh install $(REL) "$(DESTDIR)" "$(PREFIX)"

uninstall:
	scripts/install.sh uninstall $(REL) "$(DESTDIR)" "$(PREFIX)"

deb: build
	scripts/deb.sh $(REL) build

clean:
	$(CARGO) clean
	rm -rf build
