//! RTP media (RFC 3550), as sans-IO cores (in progress).
