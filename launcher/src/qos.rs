//! Quality of service: the class the API server gives a pod from its containers' cpu
//! and memory requests and limits, and the OOM score adjustment the kubelet gives
//! each container's processes by that class, so that the kernel picks the victims
//! of a memory shortage as on a node: BestEffort first, Guaranteed last.

use crate::spec::{ContainerSpec, Limits, PodSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    pub fn name(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// The kubelet's oom_score_adj for a Guaranteed container, and pause's (its sandbox).
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
pub const SANDBOX_OOM_SCORE_ADJ: i32 = -998;
const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// A container's cpu and memory requests, as the API server defaults them (a request
/// unset is its limit), and limits; zero is unset.
fn amounts(l: &Limits) -> ([Option<u64>; 2], [Option<u64>; 2]) {
    let set = |v: Option<u64>| v.filter(|&v| v > 0);
    let limits = [set(l.cpu_milli), set(l.memory)];
    let requests = [
        set(l.cpu_request_milli).or(limits[0]),
        set(l.memory_request).or(limits[1]),
    ];
    (requests, limits)
}

/// The pod's class, as the API server's GetPodQOS computes it over every container:
/// BestEffort without any cpu or memory request or limit; Guaranteed when every
/// container has both limits and its requests equal them; else Burstable.
pub fn class(spec: &PodSpec) -> QosClass {
    let mut any = false;
    let mut guaranteed = true;
    for c in spec.all_containers() {
        let (requests, limits) = amounts(&c.limits);
        any |= requests.iter().chain(&limits).any(Option::is_some);
        guaranteed &= limits.iter().all(Option::is_some) && requests == limits;
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

/// The oom_score_adj of container `c`'s processes, as the kubelet's
/// GetContainerOOMScoreAdjust: -997 Guaranteed, 1000 BestEffort; Burstable from its
/// memory request's share of the machine's `capacity` (between 3 and 999), a
/// sidecar's no higher than that of the regular container asking the least.
pub fn oom_score_adj(spec: &PodSpec, c: &ContainerSpec, capacity: u64) -> i32 {
    match class(spec) {
        QosClass::Guaranteed => return GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => return BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {}
    }
    let capacity = i64::try_from(capacity.max(1)).unwrap_or(i64::MAX);
    let of = |request: u64| {
        let request = i64::try_from(request).unwrap_or(i64::MAX).min(capacity);
        1000 - 1000 * request / capacity
    };
    let request = |c: &ContainerSpec| amounts(&c.limits).0[1].unwrap_or(0);
    let mut adj = of(request(c));
    if c.sidecar {
        let least = spec.containers.iter().map(request).filter(|&r| r > 0).min();
        if let Some(least) = least {
            adj = adj.min(of(least));
        }
    }
    // Above any Guaranteed container, below any BestEffort one.
    let floor = i64::from(1000 + GUARANTEED_OOM_SCORE_ADJ);
    match adj {
        a if a < floor => floor as i32,
        a if a == i64::from(BEST_EFFORT_OOM_SCORE_ADJ) => BEST_EFFORT_OOM_SCORE_ADJ - 1,
        a => a as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    fn pod(limits: &[Limits]) -> PodSpec {
        let containers = limits
            .iter()
            .enumerate()
            .map(|(i, l)| ContainerSpec {
                name: format!("c{i}"),
                limits: *l,
                ..Default::default()
            })
            .collect();
        PodSpec {
            containers,
            ..crate::spec::tests::pod()
        }
    }

    fn limits(
        cpu: Option<u64>,
        cpu_req: Option<u64>,
        mem: Option<u64>,
        mem_req: Option<u64>,
    ) -> Limits {
        Limits {
            cpu_milli: cpu,
            cpu_request_milli: cpu_req,
            memory: mem,
            memory_request: mem_req,
            ..Limits::default()
        }
    }

    #[test]
    fn the_class_is_the_api_servers() {
        // The documentation's qos-demo pods, in order: Guaranteed, Burstable, BestEffort,
        // and the two-container Burstable one.
        let g = limits(Some(700), Some(700), Some(200 << 20), Some(200 << 20));
        assert_eq!(class(&pod(&[g])), QosClass::Guaranteed);
        let b = limits(None, None, Some(200 << 20), Some(100 << 20));
        assert_eq!(class(&pod(&[b])), QosClass::Burstable);
        assert_eq!(class(&pod(&[Limits::default()])), QosClass::BestEffort);
        let r = limits(None, None, None, Some(200 << 20));
        assert_eq!(class(&pod(&[r, Limits::default()])), QosClass::Burstable);
        // Limits alone are requests too; one container without them spoils Guaranteed.
        let only = limits(Some(500), None, Some(GI), None);
        assert_eq!(class(&pod(&[only])), QosClass::Guaranteed);
        assert_eq!(class(&pod(&[only, Limits::default()])), QosClass::Burstable);
        // Zero is unset; ephemeral-storage and pids do not count.
        let zero = limits(Some(0), None, None, Some(0));
        assert_eq!(class(&pod(&[zero])), QosClass::BestEffort);
        let storage = Limits {
            ephemeral_storage: Some(GI),
            pids: Some(10),
            ..Limits::default()
        };
        assert_eq!(class(&pod(&[storage])), QosClass::BestEffort);
    }

    #[test]
    fn oom_score_adj_is_the_kubelets() {
        let cap = 16 * GI;
        let g = pod(&[limits(Some(500), None, Some(GI), None)]);
        assert_eq!(oom_score_adj(&g, &g.containers[0], cap), -997);
        let be = pod(&[Limits::default()]);
        assert_eq!(oom_score_adj(&be, &be.containers[0], cap), 1000);
        // A quarter of the machine: 1000 - 250.
        let b = pod(&[limits(None, None, None, Some(4 * GI)), Limits::default()]);
        assert_eq!(oom_score_adj(&b, &b.containers[0], cap), 750);
        // No memory request: 999, above BestEffort's chance of survival.
        assert_eq!(oom_score_adj(&b, &b.containers[1], cap), 999);
        // All of the machine and more: 3, above Guaranteed.
        let big = pod(&[limits(None, None, None, Some(32 * GI))]);
        assert_eq!(oom_score_adj(&big, &big.containers[0], cap), 3);
        // A sidecar asking less than the regular containers scores as the least of them.
        let mut side = pod(&[limits(None, None, None, Some(8 * GI))]);
        side.init_containers.push(ContainerSpec {
            name: "side".into(),
            sidecar: true,
            limits: limits(None, None, None, Some(GI)),
            ..Default::default()
        });
        let sidecar = side.init_containers[0].clone();
        assert_eq!(oom_score_adj(&side, &sidecar, cap), 500);
    }
}
