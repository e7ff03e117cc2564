// The web inbox (see api/src/web.rs).
