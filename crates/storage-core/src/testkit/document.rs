//! Document backend conformance kit.
