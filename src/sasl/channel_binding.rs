//! channel_binding (being written).
