//! The `categories` column: AbuseIPDB category ids and free-text tags. (Stub: being written.)

/// AbuseIPDB name of a category id.
pub fn name(id: u8) -> Option<&'static str> {
    const NAMES: [&str; 23] = [
        "DNS Compromise",
        "DNS Poisoning",
        "Fraud Orders",
        "DDoS Attack",
        "FTP Brute-Force",
        "Ping of Death",
        "Phishing",
        "Fraud VoIP",
        "Open Proxy",
        "Web Spam",
        "Email Spam",
        "Blog Spam",
        "VPN IP",
        "Port Scan",
        "Hacking",
        "SQL Injection",
        "Spoofing",
        "Brute-Force",
        "Bad Web Bot",
        "Exploited Host",
        "Web App Attack",
        "SSH",
        "IoT Targeted",
    ];
    NAMES.get(usize::from(id).checked_sub(1)?).copied()
}
