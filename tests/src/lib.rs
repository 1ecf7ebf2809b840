//! Black-box test support: start a server binary, talk to it with real clients.
