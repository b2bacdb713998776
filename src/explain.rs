//! `trafficmgr explain`: why a query gets its answer. The query runs
//! through the query path's own code (`query::resolve_traced`, the routing
//! methods) with a recorder as its observer instead of the no-op one the
//! engine passes; nothing here decides anything.

use crate::answer::records::type_name;
use crate::answer::{Answer, Rcode, Rec};
use crate::config::{AllDown, GeoCode, Routing};
use crate::engine::{Query, QueryError, mask, routing_client};
use crate::health::{AdminState, MonitorStatus};
use crate::name::NameBuf;
use crate::query;
use crate::routing::{self, Candidates, Figure, Note, Pick, Rule, ScopeWhy, Trace, Unsteady};
use crate::snapshot::{Profile, Snapshot, Target};
use serde::Serialize;
use serde_json::{Value, json};
use std::net::IpAddr;

/// One endpoint of a profile, as the decision saw it.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    /// Its name.
    pub name: String,
    /// Its state: `Online`, `CheckingEndpoint`, `Degraded`, `Disabled`, `Drained`.
    pub state: String,
    /// The operator's override (`none`, `enabled`, `disabled`, `drain`).
    pub admin: String,
    /// Whether the candidate rule let the method choose it (None: the rule
    /// decided the profile's answer before any method ran).
    pub candidate: Option<bool>,
    /// Its priority number.
    pub priority: u16,
    /// Its weight.
    pub weight: u32,
    /// Its region, if any.
    pub region: Option<String>,
    /// What it points to (a name, addresses, or `profile NAME`).
    pub target: String,
    /// What the method read of it (rtt, distance, weight, matched prefix…),
    /// each `{"kind": …, "text": …, …}`.
    pub figures: Vec<Value>,
    /// Whether it was chosen.
    pub chosen: bool,
}

/// One profile's decision (nested profiles give one each, parent first).
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The profile's full name.
    pub profile: String,
    /// Its routing method.
    pub routing: String,
    /// Nesting depth (0: the queried profile).
    pub depth: u32,
    /// `fail-open` or `fail-closed`.
    pub all_down: String,
    /// The candidate rule's outcome, in words.
    pub rule: String,
    /// What the method looked up about the client, in words.
    pub client: Vec<String>,
    /// Every endpoint of the profile.
    pub endpoints: Vec<EndpointView>,
    /// The outcome: `endpoint`, `endpoints` (multivalue), `NODATA` or `NXDOMAIN`.
    pub outcome: String,
    /// The chosen endpoints' names.
    pub chosen: Vec<String>,
    /// The ECS scope this decision depended on.
    pub scope: u8,
    /// Why.
    pub scope_why: String,
    /// Why the answer's TTL is this profile's `ttl_unstable`; empty when
    /// the decision is steady.
    pub ttl: String,
    /// The profile's id and first endpoint id in the snapshot.
    #[serde(skip)]
    ids: (u32, u32),
}

/// Why a query gets its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The query name (lowercase, with trailing dot).
    pub name: String,
    /// The query type.
    pub qtype: String,
    /// The client address given, if any.
    pub client: Option<IpAddr>,
    /// The ECS subnet given, if any (`addr/len`).
    pub ecs: Option<String>,
    /// The address routing uses (the ECS subnet's, masked, when it has bits;
    /// else the client's), and its meaningful bits.
    pub routing_address: Option<IpAddr>,
    /// Meaningful bits of `routing_address`.
    pub source_prefix: u8,
    /// Where the name falls, in words.
    pub place: String,
    /// The zone the name is in.
    pub zone: Option<String>,
    /// The profiles' decisions.
    pub decisions: Vec<Decision>,
    /// The response code.
    pub rcode: String,
    /// The answer section, presentation form.
    pub records: Vec<String>,
    /// The authority section, presentation form.
    pub authority: Vec<String>,
    /// The ECS scope of the answer.
    pub scope: u8,
    /// Why.
    pub scope_why: String,
}

/// The observer: records what the query path reports.
struct Recorder<'s> {
    snap: &'s Snapshot,
    /// The address routing uses (to print a matched prefix).
    client: Option<IpAddr>,
    decisions: Vec<Decision>,
}

fn code(c: [u8; 2]) -> String {
    String::from_utf8_lossy(&c).into_owned()
}

fn geo_code(g: GeoCode) -> String {
    match g {
        GeoCode::Country(c) | GeoCode::Continent(c) => code(c),
        GeoCode::World => "WORLD".into(),
    }
}

/// An endpoint's state as the decision reads it (health as this snapshot
/// holds it: from the config, unless a live engine's was given).
fn state(snap: &Snapshot, p: &Profile, id: u32, depth: u32) -> &'static str {
    if !routing::enabled(snap, id) {
        return "Disabled";
    }
    if snap.health.admin(id) == AdminState::Drain {
        return "Drained";
    }
    let nested = snap.hot.get(id as usize).is_some_and(|h| h.nested);
    if nested {
        return if routing::online(snap, id, depth) {
            "Online"
        } else {
            "Degraded"
        };
    }
    match (p.monitor.is_some(), snap.health.status(id)) {
        (_, MonitorStatus::Degraded) => "Degraded",
        (false, _) => "Online",
        (true, s) => s.as_str(),
    }
}

fn target_text(snap: &Snapshot, t: &Target) -> String {
    match t {
        Target::Cname(r) => r.text().to_string(),
        Target::Addresses { v4, v6 } => v4
            .iter()
            .chain(v6.iter())
            .map(|r| r.text())
            .collect::<Vec<_>>()
            .join(" "),
        Target::Nested {
            child,
            min_children,
        } => format!(
            "profile {} (min_children {min_children})",
            snap.profiles
                .get(*child as usize)
                .map(|c| &*c.fqdn)
                .unwrap_or("?")
        ),
    }
}

fn why_text(w: ScopeWhy) -> &'static str {
    match w {
        ScopeWhy::NotClientDependent => "the answer does not depend on the client's address",
        ScopeWhy::LatencyRow => "the prefix length of the latency table's row the decision used",
        ScopeWhy::GeoIpNetwork => "the prefix length of the GeoIP network the decision used",
        ScopeWhy::UnknownClient => "nothing is known of the client: its source prefix, at most /24",
        ScopeWhy::AffinitySubnet => "affinity hashes the client's /24 (IPv4) or /56 (IPv6)",
        ScopeWhy::SubnetPrefix => {
            "the longest configured prefix holding the client (widened to stay clear of longer prefixes)"
        }
        ScopeWhy::SourcePrefix => "the catch-all answered: the client's source prefix",
        ScopeWhy::SpillSubnet => "spill-over hashes the client's /24 (IPv4) or /56 (IPv6)",
        ScopeWhy::SharedRegion => {
            "endpoints tie on round-trip time and share by the client's /24 (IPv4) or /56 (IPv6)"
        }
    }
}

fn endpoint_name(snap: &Snapshot, id: u32) -> String {
    snap.endpoints
        .get(id as usize)
        .map(|e| e.name.to_string())
        .unwrap_or_else(|| format!("#{id}"))
}

fn rule_text(r: Rule) -> &'static str {
    match r {
        Rule::ProfileDisabled => "the profile is disabled: NXDOMAIN",
        Rule::TooDeep => "nested profiles deeper than 10 levels: NXDOMAIN",
        Rule::NoneEnabled => "no endpoint is enabled: NXDOMAIN",
        Rule::AllDrained => "every enabled endpoint is drained: NODATA",
        Rule::AllDownFailClosed => "no endpoint is online and the profile fails closed: NODATA",
        Rule::Online => "candidates: the online endpoints",
        Rule::AllDownFailOpen => {
            "no endpoint is online; fail-open: every enabled, undrained endpoint is a candidate"
        }
    }
}

impl Recorder<'_> {
    fn current(&mut self) -> Option<&mut Decision> {
        self.decisions.last_mut()
    }

    fn endpoint(&mut self, id: u32) -> Option<&mut EndpointView> {
        let d = self.decisions.last_mut()?;
        let i = id.checked_sub(d.ids.1)?;
        d.endpoints.get_mut(i as usize)
    }
}

impl Trace for Recorder<'_> {
    fn profile(&mut self, snap: &Snapshot, p: &Profile, depth: u32) {
        let endpoints = p
            .endpoint_ids()
            .filter_map(|id| {
                let e = snap.endpoints.get(id as usize)?;
                Some(EndpointView {
                    name: e.name.to_string(),
                    state: state(snap, p, id, depth).into(),
                    admin: snap.health.admin(id).as_str().into(),
                    candidate: None,
                    priority: e.priority,
                    weight: e.weight,
                    region: snap
                        .regions
                        .get(e.region as usize)
                        .map(|r| r.name.to_string()),
                    target: target_text(snap, &e.target),
                    figures: Vec::new(),
                    chosen: false,
                })
            })
            .collect();
        self.decisions.push(Decision {
            profile: format!("{}.", p.fqdn),
            routing: p.routing.as_str().into(),
            depth,
            all_down: match p.all_down {
                AllDown::FailOpen => "fail-open".into(),
                AllDown::FailClosed => "fail-closed".into(),
            },
            rule: String::new(),
            client: Vec::new(),
            endpoints,
            outcome: String::new(),
            chosen: Vec::new(),
            scope: 0,
            scope_why: String::new(),
            ttl: String::new(),
            ids: (p.id, p.first),
        });
    }

    fn rule(&mut self, rule: Rule) {
        if let Some(d) = self.current() {
            d.rule = rule_text(rule).into();
        }
    }

    fn candidates(&mut self, c: &Candidates<'_>, rule: Rule) {
        let snap = self.snap;
        let Some(d) = self.decisions.last_mut() else {
            return;
        };
        let mut text = rule_text(rule).to_string();
        if let Some(p) = snap.profiles.get(d.ids.0 as usize) {
            if matches!(p.routing, Routing::Geographic | Routing::Subnet) {
                text.push_str(
                    " (this method passes over only disabled and drained endpoints: \
                     health does not move a client to another region or subnet)",
                );
            }
            for (id, v) in p.endpoint_ids().zip(d.endpoints.iter_mut()) {
                v.candidate = Some(c.ok(id));
            }
        }
        d.rule = text;
    }

    fn figure(&mut self, id: u32, f: Figure) {
        let client = self.client;
        let v = match f {
            Figure::Skipped => json!({"kind": "skipped", "text": "passed over"}),
            Figure::InOrder => json!({"kind": "in_order", "text": "taken in priority order"}),
            Figure::Weight { weight, total } => json!({
                "kind": "weight", "weight": weight, "total": total,
                "text": format!("weight {weight} of {total}"),
            }),
            Figure::Score(s) => json!({
                "kind": "affinity_score", "score": s,
                "text": format!("rendezvous score {s:.4} (highest wins)"),
            }),
            Figure::RttTable(ms) => json!({
                "kind": "rtt", "rtt_ms": ms, "source": "latency_table",
                "text": format!("{ms} ms (latency table)"),
            }),
            Figure::RttDistance { ms, km } => json!({
                "kind": "rtt", "rtt_ms": ms, "source": "distance", "km": km.round(),
                "text": format!("{ms} ms (estimated from {:.0} km)", km),
            }),
            Figure::RttUnknown => {
                json!({"kind": "rtt", "rtt_ms": null, "source": "unknown", "text": "no figure"})
            }
            Figure::GeoMatch { code, rank } => {
                let level = ["country", "continent", "world"]
                    .get(usize::from(rank))
                    .copied()
                    .unwrap_or("?");
                json!({
                    "kind": "geo_match", "code": geo_code(code), "level": level,
                    "text": format!("{} matches ({level})", geo_code(code)),
                })
            }
            Figure::SubnetMatch(len) => {
                let net = client.map(|a| format!("{}/{len}", mask(a, len)));
                json!({
                    "kind": "subnet_match", "prefix_len": len, "prefix": net,
                    "text": format!("longest prefix holding the client: {}", net.as_deref().unwrap_or("?")),
                })
            }
            Figure::SubnetDefault => {
                json!({"kind": "subnet_default", "text": "the catch-all (no subnets)"})
            }
        };
        if let Some(e) = self.endpoint(id) {
            e.figures.push(v);
        }
    }

    fn note(&mut self, n: Note) {
        let Some(d) = self.current() else { return };
        match n {
            Note::LatencyRow(p) => d
                .client
                .push(format!("latency table: the client's row is a /{p}")),
            Note::NoLatencyRow => d.client.push("latency table: no row for the client".into()),
            Note::Location { lat, lon, prefix } => d.client.push(format!(
                "GeoIP: the client is at {lat:.2}, {lon:.2} (network /{prefix})"
            )),
            Note::Country {
                country,
                continent,
                prefix,
            } => d.client.push(format!(
                "GeoIP: country {}, continent {} (network /{prefix})",
                country.map(code).unwrap_or_else(|| "?".into()),
                continent.map(code).unwrap_or_else(|| "?".into())
            )),
            Note::NoGeoIp => d.client.push("GeoIP: nothing known of the client".into()),
            Note::NoFigures => d.client.push(
                "no candidate has a latency figure or a location: the first by priority answers"
                    .into(),
            ),
            Note::Draw { r, total } => d.client.push(format!("weighted draw: {r} in 0..{total}")),
            Note::Scope(s, why) => {
                d.scope = s;
                d.scope_why = why_text(why).into();
            }
            Note::Spill {
                id,
                load,
                share,
                moved,
            } => {
                let name = endpoint_name(self.snap, id);
                let d = self.decisions.last_mut();
                if let Some(d) = d {
                    d.client.push(format!(
                        "spill-over: {name} has load {:.3}: {:.1}% of its clients move; this client {}",
                        f64::from(load) / 1000.0,
                        f64::from(share) / 10.0,
                        if moved { "moves" } else { "stays" }
                    ));
                }
            }
            Note::SpillNowhere => d
                .client
                .push("spill-over: no endpoint with room; the client goes to the least loaded one it passed through".into()),
            Note::Standby => d.client.push(
                "no candidate has a weight above 0: the standby endpoints (weight 0) answer".into(),
            ),
            Note::Shared { ties } => d.client.push(format!(
                "{ties} candidates tie on round-trip time: they share by weight, by the client's subnet"
            )),
            Note::Unsteady(u, ttl) => {
                let why = match u {
                    Unsteady::FailOpen => "no endpoint is online (fail-open)".to_string(),
                    Unsteady::Failing(id) => format!(
                        "{} failed its last probe (fewer failures than tolerated)",
                        endpoint_name(self.snap, id)
                    ),
                    Unsteady::Recovering(id) => format!(
                        "{} is recovering (passing probes, not yet enough)",
                        endpoint_name(self.snap, id)
                    ),
                    Unsteady::Spilling(id) => format!(
                        "{} is spilling clients over (load at or above spill_start)",
                        endpoint_name(self.snap, id)
                    ),
                };
                if let Some(d) = self.decisions.last_mut() {
                    d.ttl = format!("ttl_unstable {ttl} s: {why}");
                }
            }
        }
    }

    fn chose(&mut self, p: &Profile, pick: &Pick, scope: u8) {
        let snap = self.snap;
        let Some(d) = self.decisions.last_mut() else {
            return;
        };
        d.scope = scope;
        if d.scope_why.is_empty() {
            d.scope_why = why_text(ScopeWhy::NotClientDependent).into();
        }
        let ids: Vec<u32> = match pick {
            Pick::One(id) => {
                d.outcome = "endpoint".into();
                vec![*id]
            }
            Pick::Many(ids, n) => {
                d.outcome = "endpoints".into();
                ids.iter().take(usize::from(*n)).copied().collect()
            }
            Pick::NoData => {
                d.outcome = "NODATA".into();
                vec![]
            }
            Pick::NxDomain => {
                d.outcome = "NXDOMAIN".into();
                vec![]
            }
        };
        for id in ids {
            let Some(e) = snap.endpoints.get(id as usize) else {
                continue;
            };
            if e.profile != p.id {
                continue;
            }
            d.chosen.push(e.name.to_string());
            if let Some(v) = d.endpoints.get_mut(e.profile_index as usize) {
                v.chosen = true;
            }
        }
    }
}

fn rcode_text(r: Rcode) -> &'static str {
    match r {
        Rcode::NoError => "NOERROR",
        Rcode::FormErr => "FORMERR",
        Rcode::ServFail => "SERVFAIL",
        Rcode::NxDomain => "NXDOMAIN",
        Rcode::NotImp => "NOTIMP",
        Rcode::Refused => "REFUSED",
    }
}

fn rr(owner: &str, ttl: u32, r: &Rec) -> String {
    format!("{owner} {ttl} IN {} {}", type_name(r.rtype), r.text())
}

/// Explains query `q` against `snap`, with the query path's own code.
pub fn explain(snap: &Snapshot, q: &Query<'_>) -> Result<Explanation, QueryError> {
    let mut name = NameBuf::root();
    name.set_text(q.name)?;
    let client = routing_client(q.client, q.ecs)?;
    let mut rec = Recorder {
        snap,
        client: client.addr,
        decisions: Vec::new(),
    };
    let mut a = Answer::not_ours();
    query::resolve_traced(snap, &name, q.qtype, &client, &mut a, &mut rec);
    let mut owner = String::from_utf8_lossy(q.name).to_ascii_lowercase();
    if !owner.ends_with('.') {
        owner.push('.');
    }
    let zone = a.zone.map(|z| z.owner.to_string());
    let place = if !rec.decisions.is_empty() {
        "a profile".to_string()
    } else {
        match (&zone, a.rcode) {
            (None, _) => "not in any zone of this config: REFUSED (not ours)".into(),
            (Some(_), Rcode::NxDomain) => "no such name in the zone".into(),
            (Some(z), _) if *z == owner => "the zone apex".into(),
            (Some(_), _) => "an empty non-terminal (a name between the apex and a profile)".into(),
        }
    };
    // The answer's scope is the widest any level depended on.
    let scope_why = rec
        .decisions
        .iter()
        .filter(|d| d.scope == a.scope_prefix)
        .map(|d| d.scope_why.clone())
        .next()
        .unwrap_or_else(|| why_text(ScopeWhy::NotClientDependent).into());
    let apex = zone.clone().unwrap_or_default();
    Ok(Explanation {
        name: owner.clone(),
        qtype: type_name(q.qtype).to_string(),
        client: q.client,
        ecs: q.ecs.map(|(a, p)| format!("{a}/{p}")),
        routing_address: client.addr,
        source_prefix: client.source_prefix,
        place,
        zone,
        rcode: rcode_text(a.rcode).into(),
        records: a.records.iter().map(|r| rr(&owner, a.ttl(r), r)).collect(),
        authority: a.authority.iter().map(|r| rr(&apex, r.ttl, r)).collect(),
        scope: a.scope_prefix,
        scope_why,
        decisions: rec.decisions,
    })
}
