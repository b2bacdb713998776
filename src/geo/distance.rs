//! Great-circle distance and the round-trip-time estimate used where the
//! latency table has no figure (docs/ROUTING.md, "Latency and location").
//!
//! The estimate is the model of `tools/make-latency-table.rs`:
//! `rtt_ms = 2 + 2 * distance_km * 1.5 / 200` (light in fibre covers about
//! 200 km per ms; real paths are about 1.5 times the great circle), so that
//! measured and estimated figures are on one scale. No allocation here.

/// Great-circle distance in km between two (lat, lon) points in degrees.
pub fn great_circle_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// Estimated round-trip time in ms over a great-circle distance.
pub fn estimated_rtt_ms(km: f64) -> u32 {
    let ms = 2.0 + 2.0 * km * 1.5 / 200.0;
    if ms.is_finite() {
        ms.round().clamp(0.0, 65_000.0) as u32
    } else {
        u32::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Paris -> New York is about 5,840 km.
        let d = great_circle_km(48.86, 2.35, 40.71, -74.0);
        assert!((5800.0..5900.0).contains(&d), "{d}");
        assert_eq!(great_circle_km(10.0, 10.0, 10.0, 10.0), 0.0);
        assert_eq!(estimated_rtt_ms(0.0), 2);
        assert_eq!(estimated_rtt_ms(1000.0), 17);
    }
}
