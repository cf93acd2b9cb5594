//! Running functions on this machine, without Docker: API Gateway emulation and sample events.

// The local server that uses these modules comes in the lead's commit; until then most of
// what they offer is unused by the rest of the crate.
#![allow(dead_code)]

pub(crate) mod apigw;
pub(crate) mod events;
