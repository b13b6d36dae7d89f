//! x_google_token (being written).
