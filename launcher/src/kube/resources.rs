//! `resources`: limits and requests, of a container or (Kubernetes >= 1.32) a pod.

use super::{field, ManifestError};
use crate::quantity::{Memory, MilliCpu};
use crate::spec::Limits;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// cpu, memory and ephemeral-storage limits and requests of `res`, found at `<path>.resources`.
pub fn decode(res: &ResourceRequirements, path: &str) -> Result<Limits, ManifestError> {
    fn get<'a>(map: &'a Option<BTreeMap<String, Quantity>>, key: &str) -> Option<&'a str> {
        map.as_ref().and_then(|m| m.get(key)).map(|q| q.0.as_str())
    }
    let at = |which: &str, key: &str| format!("{path}.resources.{which}.{key}");
    let memory = |which, v: Option<&str>| {
        v.map(|v| {
            v.parse::<Memory>()
                .map(|m| m.0)
                .map_err(|e| field(at(which, "memory"), e.to_string()))
        })
        .transpose()
    };
    let cpu = |which, v: Option<&str>| {
        v.map(|v| {
            v.parse::<MilliCpu>()
                .map(|m| m.0)
                .map_err(|e| field(at(which, "cpu"), e.to_string()))
        })
        .transpose()
    };
    let storage = |which, v: Option<&str>| {
        v.map(|v| {
            v.parse::<Memory>()
                .map(|m| m.0)
                .map_err(|e| field(at(which, EPHEMERAL_STORAGE), e.to_string()))
        })
        .transpose()
    };
    Ok(Limits {
        memory: memory("limits", get(&res.limits, "memory"))?,
        cpu_milli: cpu("limits", get(&res.limits, "cpu"))?,
        cpu_request_milli: cpu("requests", get(&res.requests, "cpu"))?,
        memory_request: memory("requests", get(&res.requests, "memory"))?,
        pids: None,
        ephemeral_storage: storage("limits", get(&res.limits, EPHEMERAL_STORAGE))?,
        ephemeral_storage_request: storage("requests", get(&res.requests, EPHEMERAL_STORAGE))?,
    })
}

/// Limits and requests in Kubernetes notation, or None when none is set.
pub fn encode(l: &Limits) -> Option<ResourceRequirements> {
    let map = |entries: Vec<(&str, String)>| {
        (!entries.is_empty()).then(|| {
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), Quantity(v)))
                .collect::<BTreeMap<_, _>>()
        })
    };
    let mut limits = Vec::new();
    if let Some(m) = l.memory {
        limits.push(("memory", Memory(m).to_string()));
    }
    if let Some(c) = l.cpu_milli {
        limits.push(("cpu", MilliCpu(c).to_string()));
    }
    if let Some(s) = l.ephemeral_storage {
        limits.push((EPHEMERAL_STORAGE, Memory(s).to_string()));
    }
    let mut requests: Vec<(&str, String)> = l
        .cpu_request_milli
        .map(|c| ("cpu", MilliCpu(c).to_string()))
        .into_iter()
        .collect();
    if let Some(m) = l.memory_request {
        requests.push(("memory", Memory(m).to_string()));
    }
    if let Some(s) = l.ephemeral_storage_request {
        requests.push((EPHEMERAL_STORAGE, Memory(s).to_string()));
    }
    let (limits, requests) = (map(limits), map(requests));
    (limits.is_some() || requests.is_some()).then(|| ResourceRequirements {
        limits,
        requests,
        ..Default::default()
    })
}
