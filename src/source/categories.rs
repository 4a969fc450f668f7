//! The `categories` column: AbuseIPDB category ids and free-text tags. (Stub: being written.)
