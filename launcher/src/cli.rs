//! Command-line interface: clap structures, and `up`'s flags turned into the pod they
//! describe. Values stay strings until then; the model's rules (`spec`) validate
//! them, so that every error names the flag and the problem.

use crate::quantity::{self, Memory, MilliCpu, QuantityError};
pub use crate::spec::RestartPolicy;
use crate::spec::{self, ContainerSpec, Limits, Network, PodSpec, PortMapping, SpecError};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A flag's value as a manifest value that means exactly it: a `$` before `$` or `(`
/// escaped as `$$`, so that the kubelet's `$(VAR)` expansion (which the pod's manifest
/// gets) gives the value back as typed (`sh -c 'kill $$'` stays `kill $$`; `$X` needs
/// nothing).
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '(')) {
            out.push('$');
        }
    }
    out
}

#[derive(Parser, Debug)]
#[command(
    name = "launcher",
    version,
    about = "Start, join, supervise and stop pods of processes",
    long_about = "Start pods of processes that share PID, network, IPC and UTS namespaces held by \
pause, in a cgroup v2 subtree with memory, cpu and pids limits, supervised the way the kubelet \
supervises a pod (restart policy with back-off, graceful termination).",
    after_help = "Examples:
  launcher up --name web --restart OnFailure -c server='busybox httpd -f -p 8080 -h /etc' -c client='sh -c \"sleep 1; curl -s 127.0.0.1:8080/hostname\"'
  launcher up -d --name db --memory 256Mi --cpu 500m -c db='sleep 3600'
  launcher up -d --name site -v \"$PWD\":/srv -c web='busybox httpd -f -p 80 -h /srv' -p 8080:80
  launcher up -d --name offline --network none -c job='sleep 600'
  launcher up -f pod.yaml
  launcher up -d -f pod.yaml -f configmaps-and-secrets.yaml
  launcher up --name db -c db='sleep 3600' --memory 256Mi --dry-run -o yaml > pod.yaml
  launcher ps
  launcher status db -o json
  launcher exec db -- ps
  launcher exec -it db -- sh
  launcher top db --containers
  launcher logs db -c db -f
  launcher down db --grace-period 10s

Exit status: 0 ok, 1 failure, 2 usage; `up` (foreground) and `exec` pass the pod's or the \
command's status through (128+N when killed by signal N)."
)]
pub struct Cli {
    /// Directory for pod state
    #[arg(
        long,
        global = true,
        env = "LAUNCHER_ROOT",
        default_value = crate::layout::DEFAULT_STATE_ROOT
    )]
    pub root: PathBuf,

    /// Directory for what pods keep on disk: their logs
    #[arg(
        long,
        global = true,
        env = "LAUNCHER_DATA_ROOT",
        default_value = crate::layout::DEFAULT_DATA_ROOT
    )]
    pub data_root: PathBuf,

    /// cgroup2 directory under which pod cgroups are made [default: <cgroup2 mount>/launcher]
    #[arg(long, global = true, env = "LAUNCHER_CGROUP_PARENT")]
    pub cgroup_parent: Option<PathBuf>,

    /// Path of the pause binary [default: next to launcher, then $PATH]
    #[arg(long, global = true, env = "LAUNCHER_PAUSE", hide_short_help = true)]
    pub pause: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line `up -d` starts its supervisor with (`--root R --data-root D
    /// [--cgroup-parent P] supervise NAME`), read without clap: building clap's parser
    /// for every command is 0.7 ms of a pod's start. Anything else: None.
    pub fn supervisor(args: &[std::ffi::OsString]) -> Option<Cli> {
        let args: Vec<&str> = (args.iter().skip(1))
            .map(|a| a.to_str())
            .collect::<Option<_>>()?;
        let (root, data, parent, name) = match args.as_slice() {
            ["--root", root, "--data-root", data, "--cgroup-parent", parent, "supervise", name] => {
                (root, data, Some(PathBuf::from(parent)), name)
            }
            ["--root", root, "--data-root", data, "supervise", name] => (root, data, None, name),
            _ => return None,
        };
        Some(Cli {
            root: PathBuf::from(root),
            data_root: PathBuf::from(data),
            cgroup_parent: parent,
            pause: std::env::var_os("LAUNCHER_PAUSE").map(PathBuf::from),
            command: Command::Supervise {
                name: name.to_string(),
            },
        })
    }
}

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of `Up` costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
// Only the command given gets its arguments built (clap builds every command's
// otherwise, ~0.2 ms of each run); `build()` builds them all where all are walked.
#[command(defer = true)]
pub enum Command {
    /// Start a pod; stays in the foreground unless -d
    Up(Up),
    /// Stop a pod gracefully and remove it (idempotent)
    Down(Down),
    /// List pods
    Ps(Ps),
    /// Show a pod as a Kubernetes Pod object
    Status(Status),
    /// Run a command inside a pod, like kubectl exec
    #[command(after_help = "Examples:
  launcher exec web -- ps
  launcher exec -it web -- sh
  launcher exec -i web -c db -- sh -c 'cat > /tmp/dump' < dump.sql

Exits with the command's status (128+N when killed by signal N; 126/127 when it cannot run).")]
    Exec(Exec),
    /// Attach to a running container's output and, with -i, its stdin, like kubectl attach
    #[command(after_help = "Examples:
  launcher attach web
  launcher attach -it shell
  launcher attach -i worker -c queue < jobs.txt

The container's output from now on (its earlier output: `launcher logs`). Input needs \
`stdin: true` in the container's spec, a terminal `tty: true`; a `stdinOnce` container's \
stdin closes when the first session that sent input ends. ctrl-p ctrl-q leaves the \
container running (--detach-keys); so does ending attach any other way, as ^C does \
without -t. Exits 0 when the container ends or the session is left.")]
    Attach(Attach),
    /// Print a container's logs (CRI format on disk), like kubectl logs
    Logs(Logs),
    /// Show a pod as kubectl describe does: containers, conditions, events
    Describe(Describe),
    /// List the events of a pod (or of all pods), like kubectl events
    #[command(after_help = "Examples:
  launcher events web
  launcher events web -w
  launcher events")]
    Events(Events),
    /// Show the CPU and memory use of pods (or of their containers), like kubectl top pod
    #[command(after_help = "Examples:
  launcher top
  launcher top web --containers
  launcher top web --window 5s

CPU is in millicores (1000m = one core), averaged over --window; memory is the working set \
(memory.current less inactive_file), in Mi; <unknown> where the cgroup2 has no memory \
controller.")]
    Top(Top),
    /// List or remove the named volumes pods mount as persistentVolumeClaims
    #[command(after_help = "Examples:
  launcher volume ls
  launcher volume rm data

A named volume is made the first time a pod mounts its claimName, under the data root \
(<data root>/volumes/NAME), and kept after the pod is down; rm refuses one a pod uses.")]
    Volume(Volume),
    /// Wait until a pod meets a condition, like kubectl wait
    #[command(after_help = "Examples:
  launcher wait web --for=condition=Ready --timeout=60s
  launcher wait job --for=jsonpath='{.status.phase}'=Succeeded
  launcher wait web --for=delete
  launcher wait web --for=create --timeout=10s

Prints `pod/NAME condition met` and exits 0; exits 1 on timeout, or as soon as the pod can \
no longer meet the condition (it ended, its supervisor is gone, it was deleted).")]
    Wait(Wait),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    #[command(after_help = "Examples:
  launcher completion bash > /etc/bash_completion.d/launcher
  source <(launcher completion bash)
  launcher completion zsh > /usr/local/share/zsh/site-functions/_launcher
  launcher completion fish > ~/.config/fish/completions/launcher.fish")]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (launcher.1, launcher-up.1, ...) into DIR (`make install`)
    #[command(hide = true)]
    Man { dir: PathBuf },
    /// Run as a pod's supervisor (started by `up -d`)
    #[command(hide = true)]
    Supervise { name: String },
}

#[derive(Args, Debug)]
#[command(after_help = "The file system a container sees:
  The host's binaries and files, read-only, under a writable layer of the container's own: \
writes to /etc, /usr or /tmp land in the layer and go with the container (a restart starts \
clean); /tmp, /var/tmp and /run start empty. The layer is bounded by the container's \
resources.limits.ephemeral-storage (over it, the pod is evicted), else by the pod's memory \
limit or the machine's memory, and is charged to the container's memory. Volumes (-v, \
hostPath, emptyDir ...) are the way to share files with the host or between containers. \
With --privileged (or securityContext.privileged) the containers keep the host's file \
systems as they are, writable.

Examples:
  launcher up --name hello --restart Never -c hello='echo hello from a pod'
  launcher up --name build --restart Never -v \"$PWD\":/src -c make='make -C /src'
  launcher up -d --name site -v \"$PWD\":/srv -c web='busybox httpd -f -p 80 -h /srv' -p 8080:80
  launcher up -f pod.yaml")]
pub struct Up {
    /// A Kubernetes Pod manifest, YAML or JSON ("-" for standard input), with the
    /// ConfigMaps and Secrets it uses; again for more files of them
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with_all = ["name", "containers", "env", "volumes", "memory", "cpu", "cpu_request", "pids", "hostname", "privileged", "read_only", "publish", "add_host"]
    )]
    pub file: Vec<String>,

    /// Pod name (a DNS-1123 label)
    #[arg(long, allow_hyphen_values = true, required_unless_present = "file")]
    pub name: Option<String>,

    /// A container: NAME=COMMAND, COMMAND split by shell-words rules (no shell implied)
    #[arg(
        short = 'c',
        long = "container",
        value_name = "NAME=COMMAND",
        required_unless_present = "file",
        allow_hyphen_values = true
    )]
    pub containers: Vec<String>,

    /// Environment variable for every container
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A host directory or file in every container at PATH, as podman's -v (a hostPath
    /// volume; a missing host directory is made): without --privileged, the only way
    /// a container writes to the host's files
    #[arg(short = 'v', long = "volume", value_name = "HOST:PATH[:ro]")]
    pub volumes: Vec<String>,
    /// Labels of the pod, as kubectl run takes them: KEY=VALUE[,KEY=VALUE...] (repeatable)
    #[arg(short = 'l', long = "labels", value_name = "KEY=VALUE,...")]
    pub labels: Vec<String>,

    /// Memory limit for the pod (128Mi, 1G, 129e6)
    #[arg(long, value_name = "Q", allow_hyphen_values = true)]
    pub memory: Option<String>,

    /// CPU limit for the pod (500m, 0.5, 2)
    #[arg(long, value_name = "Q", allow_hyphen_values = true)]
    pub cpu: Option<String>,

    /// CPU request for the pod, as cpu.weight
    #[arg(long, value_name = "Q", allow_hyphen_values = true)]
    pub cpu_request: Option<String>,

    /// Maximum number of processes in the pod
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids: Option<String>,

    /// Restart policy [default: Always; Never for `up -i` in the foreground, whose
    /// container runs once, for its session]
    #[arg(long, value_enum, ignore_case = true)]
    pub restart: Option<RestartPolicy>,

    /// Time between SIGTERM and SIGKILL when stopping
    #[arg(
        long,
        value_name = "DUR",
        default_value = "30s",
        allow_hyphen_values = true
    )]
    pub grace_period: String,

    /// Hostname inside the pod [default: the pod name]
    #[arg(long)]
    pub hostname: Option<String>,

    /// A line of the pod's /etc/hosts: NAME:IP (as hostAliases; another pod's IP is
    /// in `launcher ps -o wide`)
    #[arg(long, value_name = "NAME:IP")]
    pub add_host: Vec<String>,

    /// Keep every capability, skip no_new_privs and the syscall filter; the pod sees
    /// the host's file systems as they are, writable (no layer), its /sys and cgroups
    #[arg(long)]
    pub privileged: bool,

    /// Every container sees the host's file system read-only (readOnlyRootFilesystem)
    #[arg(long)]
    pub read_only: bool,

    /// The pod's network: a CNI network's name, none (only lo) or host (the host's
    /// network namespace, as hostNetwork: true) [default: launcher, written to
    /// --cni-conf-dir on first use]
    #[arg(long, value_name = "NAME|none|host", env = "LAUNCHER_NETWORK")]
    pub network: Option<String>,

    /// Publish a port of the pod on the host: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp|/sctp]
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,

    /// Where `seccompProfile.type: Localhost` profiles are found (localhostProfile is a
    /// path below it), as the kubelet's seccomp root
    #[arg(
        long,
        value_name = "DIR",
        env = "LAUNCHER_SECCOMP_PROFILE_ROOT",
        default_value = "/var/lib/launcher/seccomp"
    )]
    pub seccomp_profile_root: PathBuf,

    /// Enforce this level of the Pod Security Standards, as the API server's PodSecurity
    /// admission does: a pod that violates it is refused (exit 2)
    #[arg(
        long,
        value_name = "LEVEL",
        env = "LAUNCHER_POD_SECURITY",
        default_value = "privileged",
        value_enum
    )]
    pub pod_security: crate::kube::admission::Level,

    /// Namespaced sysctls a pod may set beyond the kubelet's safe set: names or
    /// prefixes ending in `*`, comma-separated (kernel.msg*,net.core.somaxconn)
    #[arg(
        long,
        value_name = "LIST",
        env = "LAUNCHER_ALLOWED_UNSAFE_SYSCTLS",
        value_delimiter = ','
    )]
    pub allowed_unsafe_sysctls: Vec<String>,

    /// Warn, without refusing, when the pod would violate this level
    #[arg(
        long,
        value_name = "LEVEL",
        env = "LAUNCHER_POD_SECURITY_WARN",
        value_enum
    )]
    pub pod_security_warn: Option<crate::kube::admission::Level>,

    /// Where CNI network configuration lists are found
    #[arg(long, value_name = "DIR", env = "LAUNCHER_CNI_CONF_DIR", default_value = crate::network::DEFAULT_CONF_DIR)]
    pub cni_conf_dir: PathBuf,

    /// Where CNI plugins are found (colon-separated)
    #[arg(long, value_name = "DIRS", env = "LAUNCHER_CNI_BIN_DIR", default_value = crate::network::DEFAULT_BIN_DIRS)]
    pub cni_bin_dir: String,

    /// How long each CNI plugin may take (ADD and DEL) before it is killed (the default is the kubelet's --runtime-request-timeout)
    #[arg(
        long,
        value_name = "DURATION",
        env = "LAUNCHER_CNI_TIMEOUT",
        default_value = "2m"
    )]
    pub cni_timeout: String,

    /// Return once the pod's first containers run, leaving a supervisor behind: every
    /// container, or with init containers the first of them (the others follow as each
    /// completes; `launcher wait NAME --for=condition=Ready` waits for the rest)
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Attach this terminal's input to the pod, as kubectl run -i: the first -c
    /// container gets stdin (and stdinOnce); a manifest's first container with stdin
    /// is attached to. Without -d, the pod goes when that container ends
    #[arg(short = 'i', long)]
    pub stdin: bool,

    /// With -i: the container gets a terminal (tty), this one raw for the session
    #[arg(short = 't', long, requires = "stdin")]
    pub tty: bool,

    /// Print the Pod manifest instead of starting it (one kubectl accepts)
    #[arg(long)]
    pub dry_run: bool,

    /// Format of --dry-run
    #[arg(short, long, value_enum, default_value_t = StatusFormat::Yaml, requires = "dry_run")]
    pub output: StatusFormat,

    /// Multiply the restart back-off (10s doubling to 300s, reset after 10m) by this
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = 1.0,
        hide_short_help = true
    )]
    pub backoff_scale: f64,

    /// Size at which a container's log is rotated (the kubelet's containerLogMaxSize)
    #[arg(
        long,
        value_name = "SIZE",
        env = "LAUNCHER_LOG_MAX_SIZE",
        default_value = "10Mi"
    )]
    pub log_max_size: String,

    /// Log files kept per container, the live one included (containerLogMaxFiles)
    #[arg(
        long,
        value_name = "N",
        env = "LAUNCHER_LOG_MAX_FILES",
        default_value_t = 5
    )]
    pub log_max_files: u32,
}

impl Up {
    /// `--log-max-size` and `--log-max-files`, checked as the kubelet checks them.
    pub fn log_rotation(&self) -> Result<crate::logs::Rotation, String> {
        let size = self
            .log_max_size
            .parse::<Memory>()
            .map_err(|e| format!("--log-max-size {:?}: {e}", self.log_max_size))?;
        if size.0 < 1024 {
            return Err(format!(
                "--log-max-size {:?} is less than 1Ki",
                self.log_max_size
            ));
        }
        if self.log_max_files < 2 {
            return Err(format!(
                "--log-max-files must be at least 2 (the live file and one rotated), got {}",
                self.log_max_files
            ));
        }
        Ok(crate::logs::Rotation {
            max_size: size.0,
            max_files: self.log_max_files,
        })
    }

    /// Applies `--network` to the pod (from flags or a manifest) and checks that the
    /// ports it publishes have a network to be published from.
    pub fn apply_network(&self, spec: &mut PodSpec) -> Result<(), SpecError> {
        if let Some(n) = &self.network {
            let n = Network::parse(n)?;
            if spec.network == Network::Host && n != Network::Host {
                return Err(SpecError::HostNetwork(n));
            }
            spec.network = n;
        }
        if !spec.ports.is_empty() && !matches!(spec.network, Network::Cni(_)) {
            return Err(SpecError::PublishWithout(spec.network.clone()));
        }
        Ok(())
    }

    /// `--cni-bin-dir`'s directories.
    pub fn cni_bin_dirs(&self) -> Vec<PathBuf> {
        std::env::split_paths(&self.cni_bin_dir)
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    }

    /// The pod these flags describe, validated by the model's rules.
    pub fn to_spec(&self) -> Result<PodSpec, SpecError> {
        let up = self;
        let name = up.name.clone().unwrap_or_default();
        spec::validate_name("pod name", &name)?;
        let hostname = up.hostname.clone().unwrap_or_else(|| name.clone());
        spec::validate_hostname(&hostname)?;
        let mut containers: Vec<ContainerSpec> = Vec::new();
        for c in &up.containers {
            let (name, cmd) = c
                .split_once('=')
                .ok_or_else(|| SpecError::ContainerSyntax(c.clone()))?;
            spec::validate_name("container name", name)?;
            if containers.iter().any(|x| x.name == name) {
                return Err(SpecError::Duplicate(name.to_string()));
            }
            let command = shell_words::split(cmd).map_err(|e| SpecError::Command {
                name: name.to_string(),
                why: e.to_string(),
            })?;
            if let Err(why) = command.iter().try_for_each(|a| spec::nul_free(a)) {
                return Err(SpecError::Command {
                    name: name.to_string(),
                    why: why.into(),
                });
            }
            if command.is_empty() {
                return Err(SpecError::Command {
                    name: name.to_string(),
                    why: "empty command".into(),
                });
            }
            // kubectl run -i: stdin, closed when the session ends (stdinOnce).
            let attached = containers.is_empty() && up.stdin;
            containers.push(ContainerSpec {
                name: name.to_string(),
                command: command.iter().map(|a| literal(a)).collect(),
                env: Vec::new(),
                read_only_root: up.read_only,
                stdin: attached,
                stdin_once: attached,
                tty: attached && up.tty,
                ..Default::default()
            });
        }
        let mut env = Vec::new();
        for e in &up.env {
            let (k, v) = e.split_once('=').ok_or_else(|| SpecError::Env(e.clone()))?;
            if !spec::valid_env_name(k) || spec::nul_free(v).is_err() {
                return Err(SpecError::Env(e.clone()));
            }
            env.push((k.to_string(), literal(v)));
        }
        let limits = Limits {
            memory: quantity("memory", &up.memory, |s| s.parse::<Memory>())?.map(|m| m.0),
            cpu_milli: quantity("cpu", &up.cpu, |s| s.parse::<MilliCpu>())?.map(|m| m.0),
            cpu_request_milli: quantity("cpu-request", &up.cpu_request, |s| s.parse::<MilliCpu>())?
                .map(|m| m.0),
            pids: quantity("pids", &up.pids, quantity::parse_count)?,
            ..Limits::default()
        };
        let volumes = up
            .volumes
            .iter()
            .enumerate()
            .map(|(i, v)| host_volume(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        for c in &mut containers {
            c.volume_mounts = volumes.iter().map(|(_, m)| m.clone()).collect();
        }
        let grace =
            quantity::parse_duration(&up.grace_period).map_err(|error| SpecError::Quantity {
                flag: "grace-period",
                error,
            })?;
        Ok(PodSpec {
            name,
            hostname,
            init_containers: Vec::new(),
            containers,
            env,
            limits,
            restart: up.restart.unwrap_or(match up.stdin && !up.detach {
                true => RestartPolicy::Never,
                false => RestartPolicy::Always,
            }),
            grace,
            active_deadline: None,
            privileged: up.privileged,
            supplemental_groups: Vec::new(),
            service_account: "default".into(),
            labels: parse_labels(&up.labels)?,
            annotations: Default::default(),
            network: Network::Cni(crate::network::DEFAULT_NETWORK.into()),
            ports: up
                .publish
                .iter()
                .map(|p| PortMapping::parse(p))
                .collect::<Result<_, _>>()?,
            bandwidth: Default::default(),
            host_pid: false,
            host_ipc: false,
            // A pod of processes: pause is the init that reaps them all.
            share_process_namespace: true,
            sysctls: Vec::new(),
            strict_groups: false,
            fs_group: None,
            volumes: volumes.into_iter().map(|(v, _)| v).collect(),
            dns: spec::Dns {
                host_aliases: (up.add_host.iter())
                    .map(|h| host_alias(h))
                    .collect::<Result<_, _>>()?,
                ..Default::default()
            },
        })
    }
}

/// `--add-host NAME:IP` (podman's form; an IPv6 address after the first colon).
fn host_alias(arg: &str) -> Result<(String, Vec<String>), SpecError> {
    let bad = |why| SpecError::AddHost(arg.to_string(), why);
    let (name, ip) = arg.split_once(':').ok_or(bad("expected NAME:IP"))?;
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| bad("not an IP address after NAME:"))?;
    spec::validate_hostname(name).map_err(|_| bad("NAME must be dot-separated DNS-1123 labels"))?;
    Ok((ip.to_string(), vec![name.to_string()]))
}

/// `--volume HOST:PATH[:ro|rw]` number `i`: a hostPath volume and its mount.
fn host_volume(i: usize, arg: &str) -> Result<(spec::Volume, spec::VolumeMount), SpecError> {
    let bad = |why| SpecError::Volume(arg.to_string(), why);
    let mut parts = arg.split(':');
    let (host, path) = match (parts.next(), parts.next()) {
        (Some(h), Some(p)) if !h.is_empty() && !p.is_empty() => (h, p),
        _ => return Err(bad("expected HOST:PATH[:ro]")),
    };
    let read_only = match (parts.next(), parts.next()) {
        (None, _) | (Some("rw"), None) => false,
        (Some("ro"), None) => true,
        _ => return Err(bad("the only options are ro and rw")),
    };
    if spec::nul_free(arg).is_err() {
        return Err(bad("contains a NUL byte"));
    }
    if !host.starts_with('/') || !path.starts_with('/') {
        return Err(bad("both paths must be absolute"));
    }
    if path.split('/').any(|c| c == "..") || path.split('/').all(str::is_empty) {
        return Err(bad("PATH may not be / nor contain '..'"));
    }
    let name = format!("host-{i}");
    let volume = spec::Volume {
        name: name.clone(),
        source: spec::VolumeSource::HostPath {
            path: host.to_string(),
            kind: spec::HostPathType::Unset,
        },
    };
    let mount = spec::VolumeMount {
        name,
        mount_path: path.to_string(),
        read_only,
        sub_path: None,
        sub_path_expr: None,
    };
    Ok((volume, mount))
}

fn quantity<T>(
    flag: &'static str,
    v: &Option<String>,
    parse: impl Fn(&str) -> Result<T, QuantityError>,
) -> Result<Option<T>, SpecError> {
    v.as_deref()
        .map(parse)
        .transpose()
        .map_err(|error| SpecError::Quantity { flag, error })
}

/// What kubectl's, podman's and docker's verbs are here.
pub fn verb_hint(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "delete" | "rm" | "remove" | "stop" | "kill" => {
            "to stop and remove a pod, `launcher down NAME` (kubectl delete pod, podman pod rm)"
        }
        "get" | "list" | "ls" => "to list pods, `launcher ps [NAME...]` (kubectl get pods)",
        "run" | "create" | "apply" | "start" => {
            "to start a pod, `launcher up -f POD.yaml` or `launcher up --name NAME -c NAME=COMMAND`"
        }
        "inspect" => "`launcher status NAME -o yaml` or `launcher describe NAME`",
        "log" => "`launcher logs NAME [CONTAINER]`",
        _ => return None,
    })
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  launcher down web
  launcher down web db --grace-period 0
  launcher down -l app=web
  launcher down --all
  launcher down pod/web --ignore-not-found")]
pub struct Down {
    /// Pods to stop and remove (NAME or pod/NAME), all at once
    #[arg(value_name = "NAME", required_unless_present_any = ["all", "selector"], conflicts_with = "all")]
    pub names: Vec<String>,
    /// Every pod
    #[arg(long, conflicts_with = "selector")]
    pub all: bool,
    /// Every pod whose labels match, as kubectl selects (k=v, k!=v, 'k in (a,b)')
    #[arg(
        short = 'l',
        long = "selector",
        value_name = "SELECTOR",
        conflicts_with = "names"
    )]
    pub selector: Option<String>,
    /// Exit 0, silently, for a pod that is not there
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Override the pod's grace period
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub grace_period: Option<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  launcher ps -o wide
  launcher ps web db
  launcher ps pod/web -o yaml
  launcher ps -o name --no-headers
  launcher ps -l app=web,tier!=db --show-labels
  launcher ps -l 'env in (prod,stage),!canary'")]
pub struct Ps {
    /// Only these pods (NAME or pod/NAME); one that is not there is an error
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[arg(short, long, value_enum)]
    pub output: Option<PsFormat>,
    /// No header line
    #[arg(long)]
    pub no_headers: bool,
    /// Only pods whose labels match, as kubectl selects: k=v, k!=v, 'k in (a,b)', 'k notin (a)', k, !k
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// A LABELS column
    #[arg(long)]
    pub show_labels: bool,
    /// After the table, a row each time a pod changes, until interrupted (kubectl get -w)
    #[arg(short = 'w', long, conflicts_with = "output")]
    pub watch: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PsFormat {
    Wide,
    Json,
    Yaml,
    /// `pod/NAME`, a line each
    Name,
}

#[derive(Args, Debug)]
pub struct Status {
    pub name: String,
    #[arg(short, long, value_enum, default_value_t = StatusFormat::Json)]
    pub output: StatusFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusFormat {
    Json,
    Yaml,
}

#[derive(Args, Debug)]
pub struct Exec {
    pub name: String,
    /// Container [default: the kubectl.kubernetes.io/default-container annotation's, else
    /// the first]
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass standard input to the command (without it, the command's is /dev/null)
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Give the command a terminal of the pod's (with -i, when stdin is a terminal)
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Attach {
    pub name: String,
    /// Container [default: the kubectl.kubernetes.io/default-container annotation's, else
    /// the first]
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass standard input to the container (it needs stdin: true)
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Use the container's terminal (tty: true): the local one raw, its size followed
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The keys that leave the session with the container running: ctrl-X or single
    /// characters, comma-separated; empty for none
    #[arg(long, value_name = "KEYS", default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  launcher logs web
  launcher logs web sidecar -f
  launcher logs pod/web -c app --tail 20 --timestamps
  launcher logs web -p
  launcher logs web --all-containers --prefix --since 10m
  launcher logs -l app=web --prefix")]
pub struct Logs {
    /// The pod (NAME or pod/NAME)
    #[arg(required_unless_present = "selector", conflicts_with = "selector")]
    pub name: Option<String>,
    /// The container, as kubectl takes it after the pod (the same as -c)
    #[arg(value_name = "CONTAINER", conflicts_with_all = ["container", "all_containers"], requires = "name")]
    pub container_arg: Option<String>,
    /// The pods whose labels match, as kubectl logs -l (--tail defaults to 10 then)
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Container [default: the kubectl.kubernetes.io/default-container annotation's, else
    /// the first]
    #[arg(short, long, conflicts_with = "all_containers")]
    pub container: Option<String>,
    /// Every container's logs, init containers first
    #[arg(long)]
    pub all_containers: bool,
    /// Keep printing as the log grows (across restarts), until the pod is gone
    #[arg(short, long)]
    pub follow: bool,
    /// The previous instance of the container (before its last restart)
    #[arg(short, long)]
    pub previous: bool,
    /// Only the last N lines (-1: all) [default: -1, or 10 with -l]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub tail: Option<i64>,
    /// Only lines newer than this (5s, 2m, 3h)
    #[arg(
        long,
        value_name = "DUR",
        allow_hyphen_values = true,
        conflicts_with = "since_time"
    )]
    pub since: Option<String>,
    /// Only lines at or after this time (RFC 3339: 2026-11-23T10:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub since_time: Option<String>,
    /// Each line after its time (RFC 3339, nanoseconds)
    #[arg(long)]
    pub timestamps: bool,
    /// Each line after its source, [pod/NAME/CONTAINER]
    #[arg(long)]
    pub prefix: bool,
    /// Stop after this many bytes
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub limit_bytes: Option<i64>,
}

#[derive(Args, Debug)]
pub struct Describe {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Only this pod's events [default: every pod's]
    #[arg(conflicts_with = "for_object")]
    pub name: Option<String>,
    /// Only the events of this object, as kubectl events takes it: pod/NAME (or NAME)
    #[arg(long = "for", value_name = "KIND/NAME")]
    pub for_object: Option<String>,
    /// Only events of these types: Normal, Warning (comma-separated)
    #[arg(long, value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Print the events as a v1 EventList
    #[arg(short, long, value_enum)]
    pub output: Option<StatusFormat>,
    /// Keep printing events as they come, until the pod ends
    #[arg(short = 'w', long, conflicts_with = "output")]
    pub watch: bool,
}

#[derive(Args, Debug)]
pub struct Volume {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// List the named volumes, with the pods that use them
    Ls,
    /// Remove named volumes and their data (not one a pod uses)
    Rm {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct Top {
    /// Only this pod [default: every running pod]
    pub name: Option<String>,
    /// One line per container
    #[arg(long)]
    pub containers: bool,
    /// How long CPU use is measured over
    #[arg(long, value_name = "DUR", default_value = "1s")]
    pub window: String,
}

#[derive(Args, Debug)]
pub struct Wait {
    pub name: String,
    /// condition=NAME[=VALUE], jsonpath='{.FIELD...}'[=VALUE], delete or create
    #[arg(long = "for", value_name = "CONDITION")]
    pub condition: String,
    /// How long to wait ("0": check once)
    #[arg(long, value_name = "DUR", default_value = "30s")]
    pub timeout: String,
}

/// `-l app=web,tier=front -l env=prod`: kubectl run's --labels, repeatable.
fn parse_labels(flags: &[String]) -> Result<BTreeMap<String, String>, SpecError> {
    let mut labels = BTreeMap::new();
    for pair in flags.iter().flat_map(|f| f.split(',')) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| SpecError::Label(format!("{pair:?}: expected KEY=VALUE")))?;
        crate::selector::validate_label(k, v).map_err(SpecError::Label)?;
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn up(args: &[&str]) -> Result<PodSpec, SpecError> {
        let mut argv = vec!["launcher", "up"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("clap");
        match cli.command {
            Command::Up(u) => u.to_spec(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn parses_a_full_pod() {
        let spec = up(&[
            "--name",
            "web",
            "-c",
            "a=sh -c 'echo hi there'",
            "-c",
            "b=sleep 1",
            "--memory",
            "128Mi",
            "--cpu",
            "500m",
            "--pids",
            "64",
            "--restart",
            "OnFailure",
            "--grace-period",
            "2s",
        ])
        .unwrap();
        assert_eq!(spec.containers[0].command, ["sh", "-c", "echo hi there"]);
        assert_eq!(spec.limits.memory, Some(134_217_728));
        assert_eq!(spec.limits.cpu_milli, Some(500));
        assert_eq!(spec.limits.pids, Some(64));
        assert_eq!(spec.restart, RestartPolicy::OnFailure);
        assert_eq!(spec.grace, std::time::Duration::from_secs(2));
        assert_eq!(spec.hostname, "web");
    }

    #[test]
    fn bad_names_are_rejected() {
        for name in [
            "../x",
            "a/b",
            "",
            "UPPER",
            "-a",
            "a-",
            &"x".repeat(64),
            "a_b",
            "a.b",
        ] {
            assert!(
                matches!(
                    up(&["--name", name, "-c", "a=true"]),
                    Err(SpecError::Name { .. })
                ),
                "{name:?}"
            );
            assert!(
                matches!(
                    up(&["--name", "p", "-c", &format!("{name}=true")]),
                    Err(SpecError::Name { .. })
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            up(&["--name", "p", "-c", "a=true", "-c", "a=false"]),
            Err(SpecError::Duplicate("a".into()))
        );
        assert!(matches!(
            up(&["--name", "p", "-c", "novalue"]),
            Err(SpecError::ContainerSyntax(_))
        ));
        assert!(matches!(
            up(&["--name", "p", "-c", "a="]),
            Err(SpecError::Command { .. })
        ));
        assert!(matches!(
            up(&["--name", "p", "-c", "a=echo 'unterminated"]),
            Err(SpecError::Command { .. })
        ));
    }

    #[test]
    fn bad_quantities_name_their_flag() {
        let e = up(&["--name", "p", "-c", "a=true", "--memory", "12Zi"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--memory: invalid memory quantity \"12Zi\" (examples: 128Mi, 1G, 129e6, 512974848)"
        );
        for (flag, v) in [
            ("--memory", "-1"),
            ("--cpu", "0.0001"),
            ("--cpu", "1.5.5"),
            ("--pids", "0"),
            ("--grace-period", "soon"),
        ] {
            assert!(
                matches!(
                    up(&["--name", "p", "-c", "a=true", flag, v]),
                    Err(SpecError::Quantity { .. })
                ),
                "{flag} {v}"
            );
        }
    }

    #[test]
    fn flag_values_survive_the_kubelets_expansion_as_typed() {
        for typed in ["kill -9 $$", "echo $(date) $X", "$", "a$$$(b", "$("] {
            let stored = literal(typed);
            assert_eq!(crate::spec::expand(&stored, |_| Some("!".into())), typed);
        }
        assert_eq!(literal("echo $X"), "echo $X");
    }

    #[test]
    fn the_supervisors_command_line_reads_as_clap_reads_it() {
        for line in [
            "launcher --root /run/l --data-root /var/lib/l supervise web",
            "launcher --root /r --data-root /d --cgroup-parent /sys/fs/cgroup/x supervise db-1",
        ] {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let fast = Cli::supervisor(&args).expect(line);
            let clap = Cli::try_parse_from(&args).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"));
        }
        for other in [
            "launcher --root /r --data-root /d supervise",
            "launcher --root /r supervise web",
            "launcher --root /r --data-root /d ps web",
        ] {
            let args: Vec<std::ffi::OsString> = other.split(' ').map(Into::into).collect();
            assert!(Cli::supervisor(&args).is_none(), "{other}");
        }
    }
}
