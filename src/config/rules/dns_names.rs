//! DNS names as the config writes them: the syntax check every name key
//! (zones, nameservers, hostmaster, profiles, targets, probe hosts) uses,
//! and the normal form they are kept in.

/// Checks a DNS name in presentation form (no trailing dot expected, one is
/// tolerated): labels of 1..=63 octets, at most 255 octets in wire form,
/// letters, digits, `-` and `_` only.
pub fn valid_dns_name(name: &str) -> Result<(), String> {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() {
        return Err("an empty name is not a valid DNS name".into());
    }
    if n.len() + 2 > 255 {
        return Err(format!(
            "`{name}` is {} octets in wire form; at most 255 are allowed",
            n.len() + 2
        ));
    }
    for label in n.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "`{name}` has a label of {} octets; at most 63 are allowed",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{name}` contains `{c}`; DNS names here use letters, digits, `-` and `_`"
            ));
        }
    }
    Ok(())
}

/// The form names are kept in: lowercase, without a trailing dot.
pub(super) fn normalized(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}
