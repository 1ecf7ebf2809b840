//! Unit tests of the consumer machine on a memory store, with a virtual clock.
