//! A connection's bounded outbound queue, with slow-consumer accounting.
