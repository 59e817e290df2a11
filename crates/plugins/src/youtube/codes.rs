//! Code tables: ISO 3166-1 alpha-2 regions, the Data API's video categories by name, and
//! the relevance-language check.

/// Every officially assigned ISO 3166-1 alpha-2 code.
const REGIONS: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE \
DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR \
GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP \
KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW \
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG \
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// What is accepted for a region, for error messages.
pub const REGION_ACCEPTED: &str =
    "an ISO 3166-1 alpha-2 country code such as US, GB, DE or IN (any letter case)";

/// The upper-cased code when `text` is an assigned ISO 3166-1 alpha-2 code.
pub fn region(text: &str) -> Option<String> {
    let upper = text.trim().to_ascii_uppercase();
    (upper.len() == 2 && REGIONS.split_ascii_whitespace().any(|r| r == upper)).then_some(upper)
}

/// Category names accepted by `trending_scrape`, with their Data API `videoCategoryId`.
/// `all` is the whole chart (`0`). `movies` maps to Film & Animation (1): the chart's
/// "Trending Movies" list is trailers, which are uploaded there. Only assignable categories
/// are named (Trailers, 44, is not assignable, so it has no chart of its own). Whether a
/// region has the category is checked when the task runs, against the region's list.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("all", "0"),
    ("film", "1"),
    ("movies", "1"),
    ("autos", "2"),
    ("music", "10"),
    ("pets", "15"),
    ("sports", "17"),
    ("travel", "19"),
    ("gaming", "20"),
    ("people", "22"),
    ("comedy", "23"),
    ("entertainment", "24"),
    ("news", "25"),
    ("howto", "26"),
    ("education", "27"),
    ("science", "28"),
    ("nonprofits", "29"),
];

/// The US list of video categories (id, title), as `videoCategories.list?regionCode=US`
/// answers it (reference §1.7): the titles items get when no region list was read.
pub const US_CATEGORY_TITLES: &[(&str, &str)] = &[
    ("1", "Film & Animation"),
    ("2", "Autos & Vehicles"),
    ("10", "Music"),
    ("15", "Pets & Animals"),
    ("17", "Sports"),
    ("18", "Short Movies"),
    ("19", "Travel & Events"),
    ("20", "Gaming"),
    ("21", "Videoblogging"),
    ("22", "People & Blogs"),
    ("23", "Comedy"),
    ("24", "Entertainment"),
    ("25", "News & Politics"),
    ("26", "Howto & Style"),
    ("27", "Education"),
    ("28", "Science & Technology"),
    ("29", "Nonprofits & Activism"),
    ("30", "Movies"),
    ("31", "Anime/Animation"),
    ("32", "Action/Adventure"),
    ("33", "Classics"),
    ("34", "Comedy"),
    ("35", "Documentary"),
    ("36", "Drama"),
    ("37", "Family"),
    ("38", "Foreign"),
    ("39", "Horror"),
    ("40", "Sci-Fi/Fantasy"),
    ("41", "Thriller"),
    ("42", "Shorts"),
    ("43", "Shows"),
    ("44", "Trailers"),
];

/// The US title of a category id, if it has one.
pub fn category_title(id: &str) -> Option<&'static str> {
    US_CATEGORY_TITLES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| *t)
}

/// What is accepted for a category, for error messages.
pub fn category_accepted() -> String {
    let names: Vec<&str> = CATEGORIES.iter().map(|(n, _)| *n).collect();
    format!(
        "one of {} (default all), or a numeric YouTube category id such as 10",
        names.join(", ")
    )
}

/// The `videoCategoryId` for a category name or numeric id.
pub fn category_id(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some((_, id)) = CATEGORIES.iter().find(|(n, _)| *n == lower) {
        return Some((*id).to_string());
    }
    let numeric =
        !lower.is_empty() && lower.len() <= 3 && lower.bytes().all(|b| b.is_ascii_digit());
    numeric
        .then(|| lower.trim_start_matches('0').to_string())
        .map(|s| if s.is_empty() { "0".to_string() } else { s })
}

/// What is accepted for a language, for error messages.
pub const LANGUAGE_ACCEPTED: &str =
    "an ISO 639-1 two-letter language code such as en, de or ja (also zh-Hans, zh-Hant)";

/// The normalised code when `text` is a two-letter ISO 639-1 code or `zh-Hans`/`zh-Hant`.
pub fn language(text: &str) -> Option<String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("zh-hans") {
        return Some("zh-Hans".into());
    }
    if t.eq_ignore_ascii_case("zh-hant") {
        return Some("zh-Hant".into());
    }
    (t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphabetic())).then(|| t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(region("us").as_deref(), Some("US"));
        assert_eq!(region(" gb ").as_deref(), Some("GB"));
        assert_eq!(REGIONS.split_ascii_whitespace().count(), 249);
        for bad in ["", "U", "USA", "XX", "ZZ", "1A", "ü"] {
            assert_eq!(region(bad), None, "{bad}");
        }
    }

    #[test]
    fn categories() {
        assert_eq!(category_id("Music").as_deref(), Some("10"));
        assert_eq!(category_id("all").as_deref(), Some("0"));
        assert_eq!(category_id("20").as_deref(), Some("20"));
        assert_eq!(category_id("000").as_deref(), Some("0"));
        assert_eq!(category_id("010").as_deref(), Some("10"));
        for bad in ["", "musik", "1000", "-1", "1.5"] {
            assert_eq!(category_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn languages() {
        assert_eq!(language("EN").as_deref(), Some("en"));
        assert_eq!(language("zh-hant").as_deref(), Some("zh-Hant"));
        for bad in ["", "e", "eng", "e1", "en-US"] {
            assert_eq!(language(bad), None, "{bad}");
        }
    }
}
