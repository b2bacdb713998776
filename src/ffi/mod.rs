//! C ABI (see mod docs).
