//! The Container Network Interface, as a runtime speaks it (CNI specification 1.0.0):
//! network configuration lists found by name in a directory, plugins found by type in
//! a search path, and ADD and DEL run over a list, each plugin an executable given its
//! configuration on stdin and its parameters in `CNI_*` variables.
//!
//! ADD runs the plugins in order, each getting the result of the one before as
//! `prevResult`; DEL runs them in reverse, each getting the final ADD result, and is
//! idempotent (the plugins promise it: a DEL of what is not there succeeds). A plugin
//! learns of a capability's runtime value (`portMappings`, `bandwidth`) only if its
//! configuration declares that capability.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("network {name:?} not found in {dir}{}", skipped.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    NotFound {
        name: String,
        dir: PathBuf,
        /// A file that could not be read as a network, which might have been it.
        skipped: Option<String>,
    },
    #[error("invalid network configuration {path}: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("network {network:?}: CNI plugin {plugin:?} not found in {} (install containernetworking-plugins, or give --cni-bin-dir)", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))]
    MissingPlugin {
        network: String,
        plugin: String,
        dirs: Vec<PathBuf>,
    },
    #[error("network {network:?}: CNI plugin {plugin} failed ({command}): {msg}")]
    Plugin {
        network: String,
        plugin: String,
        command: &'static str,
        msg: String,
    },
    #[error("failed to write the network configuration {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A network configuration list, as read from its file.
#[derive(Debug, Clone)]
pub struct NetworkList {
    pub name: String,
    pub path: PathBuf,
    /// The whole list, as the file has it (a single `.conf` made into a list).
    pub config: Value,
}

/// The extensions libcni reads, in its order.
const EXTENSIONS: [&str; 3] = ["conf", "conflist", "json"];

impl NetworkList {
    /// Parses the file at `path`: a `.conflist`, or a single plugin's `.conf`.
    pub fn parse(path: &Path, text: &str) -> Result<NetworkList, CniError> {
        let bad = |why: String| CniError::Malformed {
            path: path.to_path_buf(),
            why,
        };
        let mut v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Some(obj) = v.as_object_mut() else {
            return Err(bad("not a JSON object".into()));
        };
        if !obj.contains_key("plugins") && obj.contains_key("type") {
            // A single plugin's configuration: a list of one.
            let mut plugin = obj.clone();
            let name = plugin.remove("name");
            let version = plugin.remove("cniVersion");
            let mut list = Map::new();
            list.insert("name".into(), name.unwrap_or(Value::Null));
            list.insert("cniVersion".into(), version.unwrap_or(json!("0.2.0")));
            list.insert("plugins".into(), json!([plugin]));
            v = Value::Object(list);
        }
        let name = match v.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return Err(bad("no \"name\"".into())),
        };
        if !v.get("cniVersion").is_some_and(Value::is_string) {
            return Err(bad("no \"cniVersion\"".into()));
        }
        let plugins = v
            .get("plugins")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("\"plugins\" is not a list".into()))?;
        if plugins.is_empty() {
            return Err(bad("\"plugins\" is empty".into()));
        }
        for (i, p) in plugins.iter().enumerate() {
            match p.get("type").and_then(Value::as_str) {
                Some(t) if plugin_name_ok(t) => {}
                Some(t) => return Err(bad(format!("plugins[{i}].type {t:?} is no plugin name"))),
                None => return Err(bad(format!("plugins[{i}] has no \"type\""))),
            }
        }
        Ok(NetworkList {
            name,
            path: path.to_path_buf(),
            config: v,
        })
    }

    /// The list named `name` in `dir`, in libcni's file order (the first wins).
    pub fn find(dir: &Path, name: &str) -> Result<NetworkList, CniError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e))
            })
            .collect();
        files.sort();
        let mut skipped = None;
        for path in files {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    skipped.get_or_insert(format!("{} is unreadable: {e}", path.display()));
                    continue;
                }
            };
            match NetworkList::parse(&path, &text) {
                Ok(list) if list.name == name => return Ok(list),
                Ok(_) => {}
                Err(e) => {
                    skipped.get_or_insert(e.to_string());
                }
            }
        }
        Err(CniError::NotFound {
            name: name.into(),
            dir: dir.to_path_buf(),
            skipped,
        })
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Value> {
        self.config["plugins"].as_array().into_iter().flatten()
    }

    /// Every plugin's executable, found in `dirs`.
    pub fn executables(&self, dirs: &[PathBuf]) -> Result<Vec<PathBuf>, CniError> {
        self.plugins()
            .map(|p| {
                let kind = p["type"].as_str().unwrap_or_default();
                // The default bridge is built in: no program of its own is needed
                // (an empty path stands for it).
                let built_in = super::bridge::is_default(&self.name, p).then(PathBuf::new);
                dirs.iter()
                    .map(|d| d.join(kind))
                    .find(|p| is_executable(p))
                    .or(built_in)
                    .ok_or_else(|| CniError::MissingPlugin {
                        network: self.name.clone(),
                        plugin: kind.into(),
                        dirs: dirs.to_vec(),
                    })
            })
            .collect()
    }
}

/// A plugin's type names a file in the search path, nothing else.
fn plugin_name_ok(t: &str) -> bool {
    !t.is_empty() && t != "." && t != ".." && !t.contains('/') && !t.contains('\0')
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One attachment of a container to a network: what every call of the list shares.
pub struct Call<'a> {
    pub list: &'a Value,
    pub executables: &'a [PathBuf],
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// `CNI_ARGS`, as `K=V;K=V`.
    pub args: &'a str,
    /// Capability name to its runtime value (`portMappings`, `bandwidth`).
    pub capabilities: &'a Map<String, Value>,
    /// How long one plugin may take.
    pub timeout: Duration,
    /// Turns readable when the call should stop (the pod is being taken down).
    pub cancel: Option<std::os::fd::BorrowedFd<'a>>,
}

impl Call<'_> {
    fn name(&self) -> String {
        self.list["name"].as_str().unwrap_or_default().to_string()
    }

    /// ADD over the list; the final result. On a failure the plugins already run
    /// are not undone here: the caller runs [`Call::del`], as the specification asks.
    pub fn add(&self) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for (i, plugin) in self.plugins().enumerate() {
            let result = self.exec("ADD", i, plugin, prev.as_ref())?;
            prev = Some(result);
        }
        Ok(prev.unwrap_or(Value::Null))
    }

    /// DEL over the list in reverse, each plugin given `result`, the ADD's; every
    /// plugin is asked even after one failed, and the first failure is returned.
    pub fn del(&self, result: Option<&Value>) -> Result<(), CniError> {
        let plugins: Vec<(usize, &Value)> = self.plugins().enumerate().collect();
        let mut first = None;
        for (i, plugin) in plugins.into_iter().rev() {
            if let Err(e) = self.exec("DEL", i, plugin, result) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn plugins(&self) -> impl Iterator<Item = &Value> {
        self.list["plugins"].as_array().into_iter().flatten()
    }

    /// The configuration plugin `plugin` reads on stdin: its own, with the list's
    /// name and version, the previous result, and the runtime values of the
    /// capabilities it declares.
    fn stdin(&self, plugin: &Value, prev: Option<&Value>) -> Value {
        let mut conf = plugin.clone();
        conf["name"] = self.list["name"].clone();
        conf["cniVersion"] = self.list["cniVersion"].clone();
        if let Some(prev) = prev.filter(|p| !p.is_null()) {
            conf["prevResult"] = prev.clone();
        }
        let runtime: Map<String, Value> = plugin["capabilities"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .filter_map(|(cap, _)| Some((cap.clone(), self.capabilities.get(cap)?.clone())))
            .collect();
        if !runtime.is_empty() {
            conf["runtimeConfig"] = Value::Object(runtime);
        }
        conf
    }

    fn exec(
        &self,
        command: &'static str,
        index: usize,
        plugin: &Value,
        prev: Option<&Value>,
    ) -> Result<Value, CniError> {
        let kind = plugin["type"].as_str().unwrap_or_default();
        let fail = |msg: String| CniError::Plugin {
            network: self.name(),
            plugin: kind.into(),
            command,
            msg,
        };
        // Built in: the default bridge; and on DEL, whatever the plan found built in
        // (an empty path), should a later version write another default.
        let planned_built_in = self
            .executables
            .get(index)
            .is_some_and(|e| e.as_os_str().is_empty());
        if super::bridge::is_default(&self.name(), plugin) || (command == "DEL" && planned_built_in)
        {
            let pod = super::bridge::Pod {
                network: &self.name(),
                container_id: self.container_id,
                ifname: self.ifname,
                netns: self.netns,
                cni_version: self.list["cniVersion"].as_str().unwrap_or("1.0.0"),
            };
            let done = match command {
                "ADD" => super::bridge::add(&pod, plugin),
                _ => super::bridge::del(&pod).map(|()| Value::Null),
            };
            return done.map_err(|e| fail(e.to_string()));
        }
        let exe = self
            .executables
            .get(index)
            .ok_or_else(|| fail("no executable".into()))?;
        // A record is only a file: what it names is run as root only if it is the
        // plugin of that type, and it and every directory above it are root's alone.
        if exe.file_name().map_or(true, |f| f != kind) {
            return Err(fail(format!(
                "{} is not the plugin {kind:?}",
                exe.display()
            )));
        }
        for path in exe.ancestors() {
            crate::state::check_trusted(path, "--cni-bin-dir").map_err(|e| fail(e.to_string()))?;
        }
        let path = std::env::join_paths(self.executables.iter().filter_map(|e| e.parent()))
            .unwrap_or_default();
        let mut cmd = Command::new(exe);
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", self.container_id)
            .env("CNI_NETNS", self.netns)
            .env("CNI_IFNAME", self.ifname)
            .env("CNI_ARGS", self.args)
            .env("CNI_PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, for whatever it starts to be killed with it; and
            // gone if the launcher that runs it dies.
            .process_group(0);
        crate::sys::die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("{}: {e}", exe.display())))?;
        let input = serde_json::to_vec(&self.stdin(plugin, prev)).unwrap_or_default();
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin that exits without reading all of it answers on stdout.
            let _ = stdin.write_all(&input);
        }
        let finished = crate::sys::output_within(child, self.timeout, self.cancel)
            .map_err(|e| fail(format!("{}: {e}", exe.display())))?;
        let out = match finished {
            crate::sys::Finished::Done(out) => out,
            crate::sys::Finished::TimedOut => {
                let took = crate::quantity::format_duration(self.timeout);
                return Err(fail(format!(
                    "no answer within {took} (--cni-timeout): killed"
                )));
            }
            crate::sys::Finished::Cancelled => {
                return Err(fail("stopped: the pod is being taken down".into()))
            }
        };
        if !out.status.success() {
            return Err(fail(error_message(&out.stdout, &out.stderr, out.status)));
        }
        if command == "DEL" {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("its result is not JSON ({e})")))
    }
}

/// What a failed plugin said: the `msg` (and `details`) of its error object on
/// stdout, else its stderr, else its exit status.
fn error_message(stdout: &[u8], stderr: &[u8], status: std::process::ExitStatus) -> String {
    if let Ok(err) = serde_json::from_slice::<Value>(stdout) {
        if let Some(msg) = err["msg"].as_str() {
            return match err["details"].as_str().filter(|d| !d.is_empty()) {
                Some(d) => format!("{msg}; {d}"),
                None => msg.to_string(),
            };
        }
    }
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    match line {
        Some(l) => l.trim().to_string(),
        None => format!("exited with {status}"),
    }
}

/// The addresses a result gives the container's interface `ifname` (or, in a result
/// that names no interfaces, every address), without their prefix length.
pub fn container_ips(result: &Value, ifname: &str) -> Vec<String> {
    let interfaces = result["interfaces"].as_array();
    let ours = |ip: &Value| -> bool {
        let Some(ifs) = interfaces else { return true };
        match ip["interface"].as_u64() {
            Some(i) => ifs
                .get(i as usize)
                .is_some_and(|itf| itf["name"] == ifname && itf.get("sandbox").is_some()),
            None => true,
        }
    };
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ip| ours(ip))
        .filter_map(|ip| ip["address"].as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_single_conf_is_a_list_of_one() {
        let l = NetworkList::parse(
            Path::new("/x/10-a.conf"),
            r#"{"cniVersion":"0.4.0","name":"a","type":"bridge","bridge":"b0"}"#,
        )
        .unwrap();
        assert_eq!(l.name, "a");
        assert_eq!(l.config["plugins"][0]["type"], "bridge");
        assert_eq!(l.config["plugins"][0]["bridge"], "b0");
        assert!(l.config["plugins"][0].get("name").is_none());
    }

    #[test]
    fn malformed_lists_name_their_problem() {
        for (text, why) in [
            ("{", "EOF while parsing"),
            ("[]", "not a JSON object"),
            (
                r#"{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#,
                "no \"name\"",
            ),
            (
                r#"{"name":"n","plugins":[{"type":"x"}]}"#,
                "no \"cniVersion\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
                "\"plugins\" is empty",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{}]}"#,
                "plugins[0] has no \"type\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}"#,
                "is no plugin name",
            ),
        ] {
            let e = NetworkList::parse(Path::new("/d/n.conflist"), text).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("invalid network configuration /d/n.conflist: "),
                "{msg}"
            );
            assert!(msg.contains(why), "{text}: {msg}");
        }
    }

    #[test]
    fn a_plugin_sees_only_the_capabilities_it_declares() {
        let list = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
            {"type": "bridge"},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": false}},
        ]});
        let mut caps = Map::new();
        caps.insert("portMappings".into(), json!([{"hostPort": 8080}]));
        caps.insert("bandwidth".into(), json!({"ingressRate": 1000}));
        let call = Call {
            list: &list,
            executables: &[],
            container_id: "c",
            netns: Path::new("/n"),
            ifname: "eth0",
            args: "",
            capabilities: &caps,
            timeout: Duration::from_secs(1),
            cancel: None,
        };
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let plugins = list["plugins"].as_array().unwrap();
        let first = call.stdin(&plugins[0], None);
        assert_eq!(first["name"], "n");
        assert_eq!(first["cniVersion"], "1.0.0");
        assert!(first.get("runtimeConfig").is_none() && first.get("prevResult").is_none());
        let second = call.stdin(&plugins[1], Some(&prev));
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080}]})
        );
        assert_eq!(second["prevResult"], prev);
        assert!(call
            .stdin(&plugins[2], Some(&prev))
            .get("runtimeConfig")
            .is_none());
    }

    #[test]
    fn the_pod_ip_is_the_sandbox_interfaces() {
        let r = json!({"interfaces": [
            {"name": "cni0", "mac": "aa"},
            {"name": "veth1", "mac": "bb"},
            {"name": "eth0", "mac": "cc", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "10.1.0.1/16", "interface": 0},
                    {"address": "10.1.0.7/16", "gateway": "10.1.0.1", "interface": 2},
                    {"address": "fd00::7/64", "interface": 2}]});
        assert_eq!(container_ips(&r, "eth0"), ["10.1.0.7", "fd00::7"]);
        let bare = json!({"ips": [{"version": "4", "address": "10.2.0.3/24"}]});
        assert_eq!(container_ips(&bare, "eth0"), ["10.2.0.3"]);
    }

    #[test]
    fn a_failed_plugin_is_known_by_its_msg() {
        use std::os::unix::process::ExitStatusExt;
        let st = std::process::ExitStatus::from_raw(1 << 8);
        let out = br#"{"code": 7, "msg": "failed to allocate", "details": "range full"}"#;
        assert_eq!(
            error_message(out, b"", st),
            "failed to allocate; range full"
        );
        assert_eq!(error_message(b"", b"panic: x\n\n", st), "panic: x");
        assert_eq!(error_message(b"", b"", st), "exited with exit status: 1");
    }

    #[test]
    fn a_plugin_that_hangs_is_killed_with_what_it_started() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testing::TempDir::new("cni-hang");
        std::fs::create_dir_all(&dir).unwrap();
        let plugin = dir.join("hang");
        let pids = dir.join("pids");
        // It starts a child of its own, then never answers.
        let script = format!(
            "#!/bin/sh\nsleep 600 & echo $$ $! > {}\nwait\n",
            pids.display()
        );
        std::fs::write(&plugin, script).unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let list = json!({"cniVersion": "1.0.0", "name": "slow", "plugins": [{"type": "hang"}]});
        let call = Call {
            list: &list,
            executables: std::slice::from_ref(&plugin),
            container_id: "c",
            netns: Path::new("/n"),
            ifname: "eth0",
            args: "",
            capabilities: &Map::new(),
            timeout: Duration::from_secs(1),
            cancel: None,
        };
        let started = std::time::Instant::now();
        let err = call.add().unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            err,
            "network \"slow\": CNI plugin hang failed (ADD): no answer within 1s (--cni-timeout): killed"
        );
        // Both the plugin and what it started are gone (zombies of nobody's at most).
        let text = std::fs::read_to_string(&pids).unwrap();
        for pid in text.split_whitespace() {
            // SIGKILLed: gone once the kernel has finished it off.
            let dead = || {
                let pid: i32 = pid.parse().unwrap();
                crate::procfs::stat(pid).map_or(true, |st| st.state == 'Z')
            };
            let deadline = started + Duration::from_secs(10);
            while !dead() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(dead(), "{pid} outlived its plugin's timeout");
        }
    }
}
