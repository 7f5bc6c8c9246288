//! Vector backend conformance kit.
