//! `/gatewayz` and the `/varz` gateway section.
