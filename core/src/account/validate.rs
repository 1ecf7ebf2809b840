//! Config-time validation of accounts: unknown accounts, unauthorized imports, import cycles.
