//! Nested profiles: no cycles, at most 10 deep.

use super::{Locator, index, key};
use crate::config::error::ConfigError;
use crate::config::model::{EndpointKind, ProfileCfg};
use std::collections::HashMap;

/// Checks every profile's nesting: no cycle, depth ≤ 10.
pub(super) fn check(loc: &Locator, profiles: &[ProfileCfg]) -> Result<(), ConfigError> {
    let mut memo = HashMap::new();
    for pi in 0..profiles.len() {
        nesting_depth(loc, profiles, pi, &mut Vec::new(), &mut memo)?;
    }
    Ok(())
}

/// The nesting depth of profile `pi` (1 without nested endpoints); `stack`
/// holds the profiles being entered, `memo` the depths already known.
fn nesting_depth(
    loc: &Locator,
    profiles: &[ProfileCfg],
    pi: usize,
    stack: &mut Vec<usize>,
    memo: &mut HashMap<usize, usize>,
) -> Result<usize, ConfigError> {
    if let Some(d) = memo.get(&pi) {
        return Ok(*d);
    }
    if stack.contains(&pi) {
        let names: Vec<&str> = stack
            .iter()
            .chain(std::iter::once(&pi))
            .map(|x| profiles[*x].fqdn.as_str())
            .collect();
        return Err(loc.error(
            &[key("profile"), index(stack[0]), key("name")],
            format!("nested profiles form a cycle: {}", names.join(" -> ")),
        ));
    }
    stack.push(pi);
    let mut d = 1;
    for (ei, ep) in profiles[pi].endpoints.iter().enumerate() {
        if let EndpointKind::Nested { profile, .. } = ep.kind {
            let cd = nesting_depth(loc, profiles, profile, stack, memo)? + 1;
            if cd > 10 {
                return Err(loc.error(
                    &[
                        key("profile"),
                        index(pi),
                        key("endpoint"),
                        index(ei),
                        key("profile"),
                    ],
                    "profiles are nested more than 10 deep",
                ));
            }
            d = d.max(cd);
        }
    }
    stack.pop();
    memo.insert(pi, d);
    Ok(d)
}
