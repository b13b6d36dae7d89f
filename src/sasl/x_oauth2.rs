//! x_oauth2 (being written).
