//! digest_md5 (being written).
