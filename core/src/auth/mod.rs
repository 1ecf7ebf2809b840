//! Authentication (user/password, bcrypt, token, nkeys) and authorization (permissions).
