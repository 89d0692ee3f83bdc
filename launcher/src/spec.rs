//! The pod as the launcher runs it: the runtime's own model (`PodSpec`), and the
//! rules every way into it shares, flags (`cli`) and manifests (`kube`) alike.
//! Pure: no I/O, so every rule here is unit-tested.

use crate::quantity::QuantityError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("invalid {what} {name:?}: {why}")]
    Name {
        what: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("duplicate container name {0:?}")]
    Duplicate(String),
    #[error("invalid container {0:?}: expected NAME=COMMAND")]
    ContainerSyntax(String),
    #[error("invalid command for container {name:?}: {why}")]
    Command { name: String, why: String },
    #[error("invalid environment variable {0:?}: expected NAME=VALUE, {ENV_NAME_RULE}")]
    Env(String),
    /// The error is in the message, not a `source` too, so a chain prints it once.
    #[error("--{flag}: {error}")]
    Quantity {
        flag: &'static str,
        error: QuantityError,
    },
    #[error("--backoff-scale must be a number above 0 and at most 1000, got {0}")]
    BackoffScale(f64),
    #[error("--labels: {0}")]
    Label(String),
    #[error("invalid --network {0:?}: expected none, host or the name of a CNI network")]
    Network(String),
    #[error("invalid --publish {0:?}: {1}")]
    Publish(String, String),
    #[error("published ports need a network of the pod's own, not --network {0}")]
    PublishWithout(Network),
    #[error("--network {0} conflicts with the manifest's spec.hostNetwork: true")]
    HostNetwork(Network),
    #[error("invalid --volume {0:?}: {1}")]
    Volume(String, &'static str),
    #[error("invalid --add-host {0:?}: {1}")]
    AddHost(String, &'static str),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub command: Vec<String>,
    /// Beyond the pod's environment, in order (a value sees the ones before it).
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// envFrom: every key of a ConfigMap or Secret, before `env`.
    #[serde(default)]
    pub env_from: Vec<EnvFrom>,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The container's own limits, on its cgroup leaf.
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub probes: Probes,
    /// lifecycle.postStart: runs right after the container starts.
    #[serde(default)]
    pub post_start: Option<Action>,
    /// lifecycle.preStop: runs before the container's SIGTERM, inside the grace period.
    #[serde(default)]
    pub pre_stop: Option<Action>,
    /// securityContext.runAsUser / runAsGroup.
    #[serde(default)]
    pub user: Option<u32>,
    #[serde(default)]
    pub group: Option<u32>,
    /// The capability set after securityContext.capabilities add/drop; None: the
    /// runtimes' default set (or every capability when privileged).
    #[serde(default)]
    pub capabilities: Option<u64>,
    /// securityContext.readOnlyRootFilesystem: every mount read-only but /dev, /proc.
    #[serde(default)]
    pub read_only_root: bool,
    /// securityContext.allowPrivilegeEscalation: true. Without it no_new_privs is set.
    #[serde(default)]
    pub privilege_escalation: bool,
    /// securityContext.seccompProfile (the container's, else the pod's), as given:
    /// None runs under RuntimeDefault too (see `seccomp`).
    #[serde(default)]
    pub seccomp: Option<Seccomp>,
    /// An init container with `restartPolicy: Always`: a native sidecar, started in
    /// the init sequence and kept running beside the app containers.
    #[serde(default)]
    pub sidecar: bool,
    /// The pod's volumes it mounts, in its own mount namespace.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    /// terminationMessagePath and terminationMessagePolicy.
    #[serde(default)]
    pub termination_message: TerminationMessage,
    /// `stdin`: its standard input is a stream the supervisor holds open, for
    /// `launcher attach -i`; else /dev/null.
    #[serde(default)]
    pub stdin: bool,
    /// `stdinOnce`: that stream closes when the first attach session ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// `tty`: its standard streams are a terminal of its own.
    #[serde(default)]
    pub tty: bool,
}

/// Where a container writes why it ended, read when it does into its terminated
/// state's message; and whether the end of its log stands in for an empty one after
/// a failure (FallbackToLogsOnError).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TerminationMessage {
    /// None: [`TerminationMessage::DEFAULT_PATH`].
    pub path: Option<String>,
    pub fallback_to_logs: bool,
}

impl TerminationMessage {
    pub const DEFAULT_PATH: &'static str = "/dev/termination-log";

    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or(Self::DEFAULT_PATH)
    }
}

/// securityContext.seccompProfile: the syscall filter of a container's processes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Seccomp {
    RuntimeDefault,
    Unconfined,
    /// An OCI/Docker JSON profile: `localhostProfile` as written, and the file `up`
    /// found it at under `--seccomp-profile-root` (empty until then).
    Localhost {
        profile: String,
        path: PathBuf,
    },
}

impl Seccomp {
    pub fn name(&self) -> &'static str {
        match self {
            Seccomp::RuntimeDefault => "RuntimeDefault",
            Seccomp::Unconfined => "Unconfined",
            Seccomp::Localhost { .. } => "Localhost",
        }
    }
}

/// What a probe or a lifecycle hook does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Action {
    /// Succeeds when the command exits 0; runs inside the container.
    Exec(Vec<String>),
    /// Succeeds on an HTTP status of 200-399.
    HttpGet {
        host: std::net::IpAddr,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// Succeeds when a TCP connection is accepted.
    TcpSocket { host: std::net::IpAddr, port: u16 },
    /// Succeeds when the gRPC health service answers SERVING for `service` (the
    /// server's overall health when empty); on the pod's own address.
    Grpc { port: u16, service: String },
    /// A hook that waits (lifecycle sleep).
    Sleep(Duration),
}

/// A probe with the kubelet's timing: the first run after `initial_delay`, then every
/// `period`; `success_threshold` consecutive successes or `failure_threshold`
/// consecutive failures change its result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own terminationGracePeriodSeconds, for the stop it causes.
    pub grace: Option<Duration>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Probes {
    pub startup: Option<Probe>,
    pub liveness: Option<Probe>,
    pub readiness: Option<Probe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As the kubelet names it in its messages.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }
}

impl Probes {
    pub fn iter(&self) -> impl Iterator<Item = (ProbeKind, &Probe)> {
        [
            (ProbeKind::Startup, &self.startup),
            (ProbeKind::Liveness, &self.liveness),
            (ProbeKind::Readiness, &self.readiness),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_ref().map(|p| (k, p)))
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    pub memory: Option<u64>,
    pub cpu_milli: Option<u64>,
    pub cpu_request_milli: Option<u64>,
    /// The memory request: the QoS class and oom_score_adj come from it.
    #[serde(default)]
    pub memory_request: Option<u64>,
    pub pids: Option<u64>,
    /// ephemeral-storage: what the container may write to its layer (and the pod's
    /// disk emptyDirs, summed for the pod), and the request, kept as given.
    #[serde(default)]
    pub ephemeral_storage: Option<u64>,
    #[serde(default)]
    pub ephemeral_storage_request: Option<u64>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.cpu_milli.is_some()
            || self.cpu_request_milli.is_some()
            || self.memory_request.is_some()
            || self.pids.is_some()
    }
}

/// restartPolicy: which exits a container is started again after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[value(rename_all = "PascalCase")]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Will a container that exited with `code` be started again?
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PodSpec {
    pub name: String,
    pub hostname: String,
    /// Run one at a time, in order, each to success, before any app container.
    #[serde(default)]
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    pub restart: RestartPolicy,
    pub grace: Duration,
    /// activeDeadlineSeconds: how long the pod may run before it is stopped and Failed.
    #[serde(default)]
    pub active_deadline: Option<Duration>,
    pub privileged: bool,
    /// securityContext.supplementalGroups: every container's processes have them, on
    /// top of their user's own groups.
    #[serde(default)]
    pub supplemental_groups: Vec<u32>,
    /// securityContext.supplementalGroupsPolicy Strict: the user's memberships in
    /// /etc/group are not added (Merge, the default, adds them).
    #[serde(default)]
    pub strict_groups: bool,
    /// securityContext.fsGroup: every container's processes have it, and the volumes
    /// that can be are the group's (see `volumes::apply_fs_group`).
    #[serde(default)]
    pub fs_group: Option<FsGroup>,
    /// spec.serviceAccountName (the downward API tells it; no token is mounted).
    #[serde(default = "default_service_account")]
    pub service_account: String,
    /// metadata.labels (`up -l`), which `ps -l` selects on.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The user's metadata.annotations; the runtime's own are added on output.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The network the pod joins (`--network`, `hostNetwork`).
    #[serde(default)]
    pub network: Network,
    /// Ports published on the host (`-p`, `ports[].hostPort`).
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The `kubernetes.io/{ingress,egress}-bandwidth` annotations, in bits per second.
    #[serde(default)]
    pub bandwidth: Bandwidth,
    /// shareProcessNamespace: every container in pause's PID namespace, pause reaping
    /// for all (what `up -c` gives); else each container has one of its own, its main
    /// process PID 1 there, as Kubernetes has it.
    #[serde(default)]
    pub share_process_namespace: bool,
    /// hostPID / hostIPC: the pod shares these namespaces of the host.
    #[serde(default)]
    pub host_pid: bool,
    #[serde(default)]
    pub host_ipc: bool,
    /// spec.volumes, which containers mount by name.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// How its processes resolve names.
    #[serde(default)]
    pub dns: Dns,
    /// securityContext.sysctls: (dotted name, value), written into the pod's
    /// namespaces (see `sysctl`).
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
}

fn default_service_account() -> String {
    "default".into()
}

/// A set of capabilities as the bit mask capget(2) and capset(2) take.
pub fn capability_mask(set: impl IntoIterator<Item = caps::Capability>) -> u64 {
    set.into_iter().fold(0, |mask, c| mask | 1 << c.index())
}

/// The capability set container runtimes give a container by default (containerd,
/// Docker, podman).
pub fn default_capabilities() -> u64 {
    use caps::Capability::*;
    capability_mask([
        CAP_CHOWN,
        CAP_DAC_OVERRIDE,
        CAP_FOWNER,
        CAP_FSETID,
        CAP_KILL,
        CAP_SETGID,
        CAP_SETUID,
        CAP_SETPCAP,
        CAP_NET_BIND_SERVICE,
        CAP_NET_RAW,
        CAP_SYS_CHROOT,
        CAP_MKNOD,
        CAP_AUDIT_WRITE,
        CAP_SETFCAP,
    ])
}

/// The namespace every pod is in.
pub const NAMESPACE: &str = "default";

/// Data by key: a ConfigMap's `data` and `binaryData`, a Secret's `data` and
/// `stringData`.
pub type Data = BTreeMap<String, Vec<u8>>;

/// What was resolved for a pod when it was given: the ConfigMaps and Secrets its
/// manifest came with, by name. Neither printed nor serialized (it has no Debug and
/// no Serialize): it reaches the supervisor's memory, and from there `exec`, only
/// through [`Inputs::encode`], and never a file.
#[derive(Default, Clone)]
pub struct Inputs {
    pub config_maps: BTreeMap<String, Data>,
    pub secrets: BTreeMap<String, Data>,
}

/// The wire form of [`Inputs`]: what `encode` writes, and nothing else may.
#[derive(Serialize, Deserialize)]
struct InputsWire {
    config_maps: BTreeMap<String, Data>,
    secrets: BTreeMap<String, Data>,
}

impl Inputs {
    pub fn get(&self, kind: ObjectKind, name: &str) -> Option<&Data> {
        match kind {
            ObjectKind::ConfigMap => self.config_maps.get(name),
            ObjectKind::Secret => self.secrets.get(name),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.config_maps.is_empty() && self.secrets.is_empty()
    }

    /// The bytes that carry them from `up` to the supervisor, and to `exec`.
    pub fn encode(&self) -> Vec<u8> {
        let wire = InputsWire {
            config_maps: self.config_maps.clone(),
            secrets: self.secrets.clone(),
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Inputs> {
        let wire: InputsWire = serde_json::from_slice(bytes).ok()?;
        Some(Inputs {
            config_maps: wire.config_maps,
            secrets: wire.secrets,
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
}

impl ObjectKind {
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmap",
            ObjectKind::Secret => "secret",
        }
    }
}

/// What the runtime learned making the pod: its identity, node and addresses, as
/// the downward API has them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Facts {
    pub uid: String,
    pub node_name: String,
    pub pod_ips: Vec<String>,
    pub host_ips: Vec<String>,
    /// The machine's CPUs (in millicores) and memory: what an unset limit is.
    pub capacity_milli_cpu: u64,
    pub capacity_memory: u64,
}

/// One `env` entry of a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

impl EnvVar {
    pub fn plain(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: EnvValue::Value(value.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum EnvValue {
    /// `value`, with `$(VAR)` references.
    Value(String),
    /// valueFrom configMapKeyRef / secretKeyRef.
    Key {
        kind: ObjectKind,
        name: String,
        key: String,
        optional: bool,
    },
    /// valueFrom fieldRef: metadata.name, status.podIP, ...
    Field(String),
    /// valueFrom resourceFieldRef.
    Resource(ResourceRef),
}

/// A container's limit or request, in units of `divisor`, rounded up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResourceRef {
    /// The container whose resources; None: the one asking.
    pub container: Option<String>,
    /// limits.cpu, limits.memory, requests.cpu, requests.memory.
    pub resource: String,
    /// In the resource's unit: milli-cores for cpu, bytes for memory (at least 1).
    pub divisor: u64,
}

/// An `envFrom` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnvFrom {
    pub kind: ObjectKind,
    pub name: String,
    pub prefix: String,
    pub optional: bool,
}

/// A volume of the pod: a directory its containers mount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum VolumeSource {
    /// A directory of the pod's own under the data root, made at pod start and gone
    /// with the pod; `memory`: a tmpfs, of `size_limit` bytes if given.
    EmptyDir {
        memory: bool,
        size_limit: Option<u64>,
        /// emptyDir.mode: its directory's permission bits (0777 if unset).
        #[serde(default)]
        mode: Option<u32>,
    },
    /// A path of the host, checked (or made) as its type says.
    HostPath { path: String, kind: HostPathType },
    /// configMap, secret, downwardAPI, or `projected` (several of them): files written
    /// at pod start on a tmpfs of the pod's own, never on disk.
    Files {
        sources: Vec<Projection>,
        /// defaultMode (0644 if unset).
        default_mode: Option<u32>,
        /// Written as `projected` (else its one source is the volume's kind).
        projected: bool,
    },
    /// persistentVolumeClaim: a named volume under the data root, kept after the pod.
    Claim { name: String, read_only: bool },
}

/// One source of files of a volume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Projection {
    /// A ConfigMap's or Secret's keys, each a file (all, or `items`).
    Object {
        kind: ObjectKind,
        name: String,
        items: Vec<KeyToPath>,
        optional: bool,
    },
    /// downwardAPI items.
    Downward(Vec<DownwardFile>),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DownwardFile {
    pub path: String,
    pub mode: Option<u32>,
    pub value: DownwardValue,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum DownwardValue {
    Field(String),
    Resource(ResourceRef),
}

/// hostPath.type, checked as the kubelet checks it before the pod starts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum HostPathType {
    /// "": no check.
    Unset,
    DirectoryOrCreate,
    Directory,
    FileOrCreate,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

impl HostPathType {
    pub const ALL: [(&'static str, HostPathType); 8] = [
        ("", HostPathType::Unset),
        ("DirectoryOrCreate", HostPathType::DirectoryOrCreate),
        ("Directory", HostPathType::Directory),
        ("FileOrCreate", HostPathType::FileOrCreate),
        ("File", HostPathType::File),
        ("Socket", HostPathType::Socket),
        ("CharDevice", HostPathType::CharDevice),
        ("BlockDevice", HostPathType::BlockDevice),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }
}

/// A container's volumeMounts entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VolumeMount {
    /// The volume's name.
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
    /// A path inside the volume to mount instead of its root.
    #[serde(default)]
    pub sub_path: Option<String>,
    /// As sub_path, with `$(VAR)` from the container's environment.
    #[serde(default)]
    pub sub_path_expr: Option<String>,
}

/// securityContext.fsGroup and fsGroupChangePolicy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FsGroup {
    pub gid: u32,
    /// OnRootMismatch: a volume whose root already has the group, its setgid bit and
    /// the group's permissions is left as it is (Always walks every volume).
    pub on_root_mismatch: bool,
}

/// How a pod's processes resolve names (dnsPolicy, dnsConfig, hostAliases,
/// subdomain, setHostnameAsFQDN); `names` makes the files from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Dns {
    pub policy: DnsPolicy,
    /// dnsConfig: added to what the policy gives (all there is with None).
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    /// `options` entries: a name, and a value if it has one (`ndots:2`).
    #[serde(default)]
    pub options: Vec<(String, Option<String>)>,
    /// hostAliases (and `up --add-host`): an IP and the names that mean it.
    #[serde(default)]
    pub host_aliases: Vec<(String, Vec<String>)>,
    /// spec.subdomain: the pod's FQDN is `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>`.
    #[serde(default)]
    pub subdomain: Option<String>,
    /// setHostnameAsFQDN: the kernel's hostname is the FQDN.
    #[serde(default)]
    pub hostname_as_fqdn: bool,
}

/// spec.dnsPolicy. There is no cluster DNS here: ClusterFirst resolves as Default
/// does (the kubelet's fallback when it has no cluster DNS).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum DnsPolicy {
    ClusterFirst,
    ClusterFirstWithHostNet,
    /// The node's resolv.conf. What a pod of `up` flags gets.
    #[default]
    Default,
    /// Only the pod's dnsConfig.
    None,
}

impl DnsPolicy {
    pub const ALL: [(&'static str, DnsPolicy); 4] = [
        ("ClusterFirst", DnsPolicy::ClusterFirst),
        (
            "ClusterFirstWithHostNet",
            DnsPolicy::ClusterFirstWithHostNet,
        ),
        ("Default", DnsPolicy::Default),
        ("None", DnsPolicy::None),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("", |(n, _)| n)
    }
}

/// Which network a pod is in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Network {
    /// Its own network namespace with only `lo` (`--network none`).
    #[default]
    None,
    /// The host's network namespace (`--network host`, `hostNetwork: true`).
    Host,
    /// Its own network namespace, attached to the CNI network of this name.
    Cni(String),
}

impl Network {
    /// `--network`'s value: none, host, or a network's name.
    pub fn parse(s: &str) -> Result<Network, SpecError> {
        match s {
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            name if !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
            {
                Ok(Network::Cni(name.into()))
            }
            _ => Err(SpecError::Network(s.into())),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Network::None => f.write_str("none"),
            Network::Host => f.write_str("host"),
            Network::Cni(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// As the portmap plugin takes it.
    pub fn cni(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
    /// As a Pod manifest has it.
    pub fn kube(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// A port of the pod published on the host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address it is published on; none: every address.
    pub host_ip: Option<std::net::IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    /// `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp|/sctp]`, as podman and docker
    /// take it (an IPv6 host address in brackets).
    pub fn parse(s: &str) -> Result<PortMapping, SpecError> {
        let bad = |why: &str| SpecError::Publish(s.into(), why.into());
        let (rest, protocol) = match s.rsplit_once('/') {
            Some((r, p)) => (
                r,
                match p.to_ascii_lowercase().as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    "sctp" => Protocol::Sctp,
                    _ => return Err(bad("the protocol must be tcp, udp or sctp")),
                },
            ),
            None => (s, Protocol::Tcp),
        };
        let Some((front, container)) = rest.rsplit_once(':') else {
            return Err(bad("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT"));
        };
        let (host, ports) = match front.rsplit_once(':') {
            Some((ip, h)) => (Some(ip), (h, container)),
            None => (None, (front, container)),
        };
        let port = |p: &str| -> Result<u16, SpecError> {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(&format!("{p:?} is no port (1-65535)")))
        };
        let host_ip = match host {
            None | Some("") => None,
            Some(ip) => Some(
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| bad(&format!("{ip:?} is no IP address")))?,
            ),
        };
        Ok(PortMapping {
            host_ip,
            host_port: port(ports.0)?,
            container_port: port(ports.1)?,
            protocol,
        })
    }

    /// Do two mappings claim the same host port?
    pub fn collides(&self, other: &PortMapping) -> bool {
        self.host_port == other.host_port
            && self.protocol == other.protocol
            && match (self.host_ip, other.host_ip) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(std::net::IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port,
            self.container_port,
            self.protocol.cni()
        )
    }
}

/// Traffic shaping, in bits per second.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bandwidth {
    pub ingress: Option<u64>,
    pub egress: Option<u64>,
}

/// Kubernetes' bounds for the bandwidth annotations: 1k to 1P bits per second.
pub const BANDWIDTH_RANGE: std::ops::RangeInclusive<u64> = 1_000..=1_000_000_000_000_000;

/// A bandwidth annotation's value: a quantity in bits per second within
/// [`BANDWIDTH_RANGE`], as the kubelet's `ExtractPodBandwidthResources` checks it.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let q: crate::quantity::Memory = s
        .parse()
        .map_err(|_| format!("{s:?} is not a quantity (10M, 1G)"))?;
    if q.0 < *BANDWIDTH_RANGE.start() {
        return Err(format!("{s:?} is unreasonably small (< 1kbit)"));
    }
    if q.0 > *BANDWIDTH_RANGE.end() {
        return Err(format!("{s:?} is unreasonably large (> 1Pbit)"));
    }
    Ok(q.0)
}

/// The annotation kubectl reads for the container `exec` and `logs` act on unnamed.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// What an environment variable's name may be: Kubernetes' rule since 1.34
/// (RelaxedEnvironmentVariableValidation, KEP-4369).
pub const ENV_NAME_RULE: &str = "a name of printable ASCII characters other than '='";

/// An environment variable's name, by the same rule for flags and manifests.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// The most `--backoff-scale` stretches the back-off (300 s becomes ~3.5 days).
pub fn validate_backoff_scale(scale: f64) -> Result<(), SpecError> {
    if scale.is_finite() && scale > 0.0 && scale <= 1000.0 {
        Ok(())
    } else {
        Err(SpecError::BackoffScale(scale))
    }
}

/// Why a string cannot go to the kernel (execve, chdir): it holds a NUL byte.
pub fn nul_free(s: &str) -> Result<(), &'static str> {
    if s.contains('\0') {
        Err("must not contain a NUL byte")
    } else {
        Ok(())
    }
}

/// A DNS-1123 label: 1-63 of [a-z0-9-], starting and ending alphanumeric. It is also
/// what keeps names safe as path components (no `/`, no `..`).
pub fn validate_name(what: &'static str, name: &str) -> Result<(), SpecError> {
    let bad = |why| {
        Err(SpecError::Name {
            what,
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.len() > 63 {
        return bad("must be at most 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad("must consist of lower case letters, digits and '-' (a DNS-1123 label)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad("must start and end with a letter or digit");
    }
    Ok(())
}

/// A hostname: dot-separated DNS-1123 labels, at most 64 bytes (HOST_NAME_MAX).
pub fn validate_hostname(h: &str) -> Result<(), SpecError> {
    if h.len() > 64 {
        return Err(SpecError::Name {
            what: "hostname",
            name: h.into(),
            why: "must be at most 64 characters",
        });
    }
    h.split('.')
        .try_for_each(|label| validate_name("hostname", label))
        .map_err(|_| SpecError::Name {
            what: "hostname",
            name: h.into(),
            why: "must be dot-separated DNS-1123 labels",
        })
}

/// A pod as its processes see it: what the user asked for, with what was resolved
/// for it and what the runtime learned.
#[derive(Clone, Copy)]
pub struct Resolved<'a> {
    pub spec: &'a PodSpec,
    pub inputs: &'a Inputs,
    pub facts: &'a Facts,
}

impl Resolved<'_> {
    /// Container `c`'s environment as its processes get it, in the kubelet's order:
    /// envFrom's keys (with their prefix), then each `env` entry, a value with its
    /// `$(VAR)` references expanded from the variables defined before it, a valueFrom
    /// read from its ConfigMap, Secret, the pod's fields or a container's resources.
    /// A reference that cannot be resolved (an optional one missing) is left out; the
    /// manifest's check refused the others.
    pub fn environment(&self, c: &ContainerSpec) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
            .iter_mut()
            .find(|(name, _)| *name == k)
        {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        };
        for from in &c.env_from {
            let Some(data) = self.inputs.get(from.kind, &from.name) else {
                continue;
            };
            for (key, value) in data {
                let name = format!("{}{key}", from.prefix);
                // The kubelet skips keys that are no variable name.
                if valid_env_name(&name) {
                    set(&mut env, name, String::from_utf8_lossy(value).into_owned());
                }
            }
        }
        for var in self.spec.env_of(c) {
            let value = match &var.value {
                EnvValue::Value(v) => Some(expand(v, |name| {
                    env.iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })),
                EnvValue::Key {
                    kind, name, key, ..
                } => self
                    .inputs
                    .get(*kind, name)
                    .and_then(|d| d.get(key))
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                EnvValue::Field(path) => self.field(path),
                EnvValue::Resource(r) => self.resource(c, r),
            };
            if let Some(v) = value {
                set(&mut env, var.name, v);
            }
        }
        env
    }

    /// A downward API field of the pod (fieldRef.fieldPath).
    pub fn field(&self, path: &str) -> Option<String> {
        let quoted = |prefix: &str| {
            path.strip_prefix(prefix)?
                .strip_prefix("['")?
                .strip_suffix("']")
                .map(String::from)
        };
        if let Some(k) = quoted("metadata.labels") {
            return Some(self.spec.labels.get(&k).cloned().unwrap_or_default());
        }
        if let Some(k) = quoted("metadata.annotations") {
            return Some(self.spec.annotations.get(&k).cloned().unwrap_or_default());
        }
        Some(match path {
            "metadata.name" => self.spec.name.clone(),
            "metadata.namespace" => NAMESPACE.into(),
            "metadata.uid" => self.facts.uid.clone(),
            "metadata.labels" => map_lines(&self.spec.labels),
            "metadata.annotations" => map_lines(&self.spec.annotations),
            "spec.nodeName" => self.facts.node_name.clone(),
            "spec.serviceAccountName" => self.spec.service_account.clone(),
            "status.podIP" => self.facts.pod_ips.first().cloned().unwrap_or_default(),
            "status.podIPs" => self.facts.pod_ips.join(","),
            "status.hostIP" => self.facts.host_ips.first().cloned().unwrap_or_default(),
            "status.hostIPs" => self.facts.host_ips.join(","),
            _ => return None,
        })
    }

    /// A container's resource (resourceFieldRef) in units of its divisor, rounded up;
    /// an unset limit is the machine's capacity, an unset request the limit, or 0 for
    /// cpu (the kubelet's defaults).
    pub fn resource(&self, asking: &ContainerSpec, r: &ResourceRef) -> Option<String> {
        let c = match &r.container {
            Some(name) => self.spec.all_containers().find(|c| &c.name == name)?,
            None => asking,
        };
        let l = &c.limits;
        let amount = match r.resource.as_str() {
            "limits.cpu" => l.cpu_milli.unwrap_or(self.facts.capacity_milli_cpu),
            "limits.memory" => l.memory.unwrap_or(self.facts.capacity_memory),
            "requests.cpu" => l.cpu_request_milli.or(l.cpu_milli).unwrap_or(0),
            "requests.memory" => l.memory_request.or(l.memory).unwrap_or(0),
            _ => return None,
        };
        Some(amount.div_ceil(r.divisor.max(1)).to_string())
    }

    /// Container `c`'s command line with `$(VAR)` references expanded from its
    /// environment, as the kubelet expands command and args.
    pub fn command_line(&self, c: &ContainerSpec) -> Vec<String> {
        let env = self.environment(c);
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        c.command.iter().map(|a| expand(a, lookup)).collect()
    }
}

impl PodSpec {
    /// The groups every container's processes have beyond their user's: fsGroup and
    /// supplementalGroups.
    pub fn extra_groups(&self) -> Vec<u32> {
        let fs = self.fs_group.map(|f| f.gid);
        fs.into_iter()
            .chain(self.supplemental_groups.iter().copied())
            .collect()
    }

    /// Does each container have a PID namespace of its own?
    pub fn own_pid_namespaces(&self) -> bool {
        !self.share_process_namespace && !self.host_pid
    }

    /// A container's environment as declared: the pod's (`-e`), then its own.
    pub fn env_of(&self, c: &ContainerSpec) -> Vec<EnvVar> {
        self.env
            .iter()
            .map(|(k, v)| EnvVar::plain(k, v))
            .chain(c.env.iter().cloned())
            .collect()
    }

    /// The container named, or the pod's default: the one its
    /// `kubectl.kubernetes.io/default-container` annotation names, else the first.
    pub fn container(&self, name: Option<&str>) -> Option<&ContainerSpec> {
        match name {
            None => self.annotated_default().or(self.containers.first()),
            Some(n) => self.all_containers().find(|c| c.name == n),
        }
    }

    fn annotated_default(&self) -> Option<&ContainerSpec> {
        let name = self.annotations.get(DEFAULT_CONTAINER_ANNOTATION)?;
        self.all_containers().find(|c| &c.name == name)
    }

    /// kubectl's notice when a command took the first of several containers for want
    /// of a name: `Defaulted container "a" out of: a, b, setup (init)`.
    pub fn defaulted_notice(&self) -> Option<String> {
        let first = self.containers.first()?;
        if self.annotated_default().is_some() || self.all_containers().count() < 2 {
            return None;
        }
        let all: Vec<String> = self
            .containers
            .iter()
            .map(|c| c.name.clone())
            .chain(
                self.init_containers
                    .iter()
                    .map(|c| format!("{} (init)", c.name)),
            )
            .collect();
        Some(format!(
            "Defaulted container {:?} out of: {}",
            first.name,
            all.join(", ")
        ))
    }

    /// The capabilities a container's processes keep; None: all of them (privileged).
    pub fn capabilities_of(&self, c: &ContainerSpec) -> Option<u64> {
        (!self.privileged).then(|| c.capabilities.unwrap_or_else(default_capabilities))
    }

    /// Init containers, then app containers.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(&self.containers)
    }
}

/// A subPath as the API server takes it: relative, without `..`.
pub fn check_sub_path(sub: &str) -> Result<(), String> {
    nul_free(sub)?;
    if sub.starts_with('/') {
        return Err(format!("{sub:?} must be a relative path"));
    }
    if sub.split('/').any(|c| c == "..") {
        return Err(format!("{sub:?} must not contain '..'"));
    }
    Ok(())
}

/// The kubelet's `$(VAR)` expansion: a reference to a known variable becomes its value,
/// `$$` is a literal `$` (so `$$(VAR)` stays `$(VAR)`), and anything else (an unknown
/// name, an unclosed `$(`, a lone `$`) stays as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some(name) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match lookup(name.0) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push_str("$(");
                    out.push_str(name.0);
                    out.push(')');
                }
            }
            rest = name.1;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `key="value"` lines sorted by key, as the downward API writes labels and
/// annotations (values quoted as Go's %q quotes them).
pub fn map_lines(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string as Go's strconv.Quote writes it (printable ASCII kept, the rest escaped).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn published_ports_read_as_podman_takes_them() {
        let p = |s: &str| PortMapping::parse(s).map(|m| m.to_string());
        assert_eq!(p("8080:80").unwrap(), "8080:80/tcp");
        assert_eq!(p("127.0.0.1:8080:80/udp").unwrap(), "127.0.0.1:8080:80/udp");
        assert_eq!(p(":8080:80").unwrap(), "8080:80/tcp");
        assert_eq!(p("[::1]:53:53/UDP").unwrap(), "[::1]:53:53/udp");
        for (bad, why) in [
            ("80", "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT"),
            ("0:80", "\"0\" is no port"),
            ("8080:70000", "\"70000\" is no port"),
            ("8080:80/icmp", "tcp, udp or sctp"),
            ("localhost:8080:80", "\"localhost\" is no IP address"),
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid --publish {bad:?}: ")),
                "{e}"
            );
            assert!(e.contains(why), "{bad}: {e}");
        }
        let a = PortMapping::parse("127.0.0.1:8080:80").unwrap();
        assert!(a.collides(&PortMapping::parse("8080:81").unwrap()));
        assert!(!a.collides(&PortMapping::parse("127.0.0.2:8080:80").unwrap()));
        assert!(!a.collides(&PortMapping::parse("8080:80/udp").unwrap()));
    }

    #[test]
    fn bandwidth_is_bits_per_second_from_1k_to_1p() {
        assert_eq!(parse_bandwidth("10M"), Ok(10_000_000));
        assert_eq!(parse_bandwidth("1k"), Ok(1_000));
        assert_eq!(parse_bandwidth("1P"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_bandwidth("1Mi"), Ok(1 << 20));
        assert!(parse_bandwidth("999")
            .unwrap_err()
            .contains("unreasonably small"));
        assert!(parse_bandwidth("2P")
            .unwrap_err()
            .contains("unreasonably large"));
        assert!(parse_bandwidth("fast")
            .unwrap_err()
            .contains("not a quantity"));
    }

    pub(crate) fn pod() -> PodSpec {
        PodSpec {
            name: "p".into(),
            hostname: "p".into(),
            init_containers: Vec::new(),
            containers: Vec::new(),
            env: Vec::new(),
            limits: Limits::default(),
            restart: RestartPolicy::Always,
            grace: Duration::from_secs(30),
            active_deadline: None,
            privileged: false,
            supplemental_groups: Vec::new(),
            service_account: "default".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            network: Network::None,
            ports: Vec::new(),
            bandwidth: Bandwidth::default(),
            host_pid: false,
            host_ipc: false,
            volumes: Vec::new(),
            dns: Dns::default(),
            share_process_namespace: true,
            sysctls: Vec::new(),
            strict_groups: false,
            fs_group: None,
        }
    }

    #[test]
    fn the_default_container_is_the_annotated_one_else_the_first_with_a_notice() {
        let c = |name: &str| ContainerSpec {
            name: name.into(),
            ..Default::default()
        };
        let mut pod = PodSpec {
            init_containers: vec![c("setup")],
            containers: vec![c("a"), c("b")],
            ..pod()
        };
        assert_eq!(pod.container(None).unwrap().name, "a");
        assert_eq!(
            pod.defaulted_notice().unwrap(),
            "Defaulted container \"a\" out of: a, b, setup (init)"
        );
        pod.annotations
            .insert(DEFAULT_CONTAINER_ANNOTATION.into(), "b".into());
        assert_eq!(pod.container(None).unwrap().name, "b");
        assert_eq!(pod.defaulted_notice(), None);
        // One that names no container is no choice: the first, with the notice.
        pod.annotations
            .insert(DEFAULT_CONTAINER_ANNOTATION.into(), "zz".into());
        assert_eq!(pod.container(None).unwrap().name, "a");
        assert!(pod.defaulted_notice().is_some());
        pod.init_containers.clear();
        pod.containers.pop();
        assert_eq!(pod.defaulted_notice(), None);
    }

    #[test]
    fn networks_are_none_host_or_a_name() {
        assert_eq!(Network::parse("none"), Ok(Network::None));
        assert_eq!(Network::parse("host"), Ok(Network::Host));
        assert_eq!(
            Network::parse("my-net_1.a"),
            Ok(Network::Cni("my-net_1.a".into()))
        );
        for bad in ["", "a/b", "../x", "a b"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dependent_variables_expand_as_the_kubelet_expands_them() {
        let known = |n: &str| match n {
            "A" => Some("1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        for (input, want) in [
            ("$(A)", "1"),
            ("x$(A)y$(A)", "x1y1"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$1"),
            ("$(NOPE)", "$(NOPE)"),
            ("$(EMPTY)-", "-"),
            ("$(A", "$(A"),
            ("a$", "a$"),
            ("$A", "$A"),
            ("$$", "$"),
            ("100$ $(A)", "100$ 1"),
        ] {
            assert_eq!(expand(input, known), want, "{input}");
        }
        let c = ContainerSpec {
            name: "c".into(),
            command: vec![
                "echo".into(),
                "$(GREETING) $(NAME)".into(),
                "$(LATER)".into(),
            ],
            env: vec![
                EnvVar::plain("GREETING", "Warm greetings to"),
                EnvVar::plain("HONORIFIC", "The Most Honorable"),
                EnvVar::plain("NAME", "$(HONORIFIC) Kubernetes, $(LATER)"),
                EnvVar::plain("LATER", "later"),
            ],
            ..ContainerSpec::default()
        };
        let spec = PodSpec {
            containers: vec![c.clone()],
            ..pod()
        };
        let (inputs, facts) = (Inputs::default(), Facts::default());
        let pod = Resolved {
            spec: &spec,
            inputs: &inputs,
            facts: &facts,
        };
        // Only variables defined before are seen by a value; command sees them all.
        assert_eq!(
            pod.environment(&c)[2].1,
            "The Most Honorable Kubernetes, $(LATER)"
        );
        assert_eq!(
            pod.command_line(&c),
            [
                "echo",
                "Warm greetings to The Most Honorable Kubernetes, $(LATER)",
                "later"
            ]
        );
    }
}
