//! The built-in list of well-known bots, crawlers and HTTP client libraries used by scrapers.

/// User-Agent patterns refused unless `allow` says otherwise.
pub const BOTS: &[&str] = &[
    // Search engines and link previews.
    r"(?i)\b(googlebot|adsbot-google|mediapartners-google|bingbot|bingpreview|msnbot|slurp|duckduckbot|baiduspider|yandex\w*bot|sogou|exabot|applebot|petalbot|seznambot)\b",
    r"(?i)\b(facebookexternalhit|facebot|twitterbot|linkedinbot|slackbot|slack-imgproxy|discordbot|telegrambot|whatsapp|pinterestbot|redditbot|embedly)\b",
    // SEO and archive crawlers.
    r"(?i)\b(ahrefsbot|semrushbot|mj12bot|dotbot|rogerbot|blexbot|dataforseobot|serpstatbot|ia_archiver|archive\.org_bot|heritrix|ccbot|gptbot|claudebot|bytespider|amazonbot)\b",
    // Generic crawler names: "...bot/1.0", "...spider", "...crawler".
    r"(?i)[a-z0-9_-]*(bot|spider|crawler|scraper)[/ ]v?\d",
    r"(?i)\b(crawler|spider|scrapy|scraper|archiver|indexer)\b",
    // HTTP client libraries, as Kong's list has them.
    r"(?i)\b(apache-httpclient|python-urllib|okhttp|google-http-java-client|winhttp|httpmonitor|libwww-perl|go-http-client|java/\d)",
];
