//! oauthbearer (being written).
