//! An article's identity taken from its URL (docs/schema.md, `url_key`), the same
//! function for the datacube `articles` and the catalogue's
//! `published_articles`, so that the two meet on (appid, url_key).

/// The four query parameters that identify an article, in key order.
const IDENTITY_PARAMS: [&str; 4] = ["__biz", "mid", "idx", "sn"];

/// The identity key of an article URL.
///
/// For host `mp.weixin.qq.com` and path `/s` with all four of `__biz`, `mid`,
/// `idx` and `sn`: `mp.weixin.qq.com/s?__biz=..&mid=..&idx=..&sn=..`, the
/// values as given (percent-encoding untouched, the first occurrence of a
/// repeated parameter), everything else (scheme, `chksm`, `scene`, ...,
/// fragment) dropped. Any other URL keys as itself without scheme and
/// fragment. `&amp;` (from HTML-escaped sources) counts as `&` and a
/// left-over JSON escape `\/` as `/`; surrounding whitespace is ignored.
pub fn url_key(url: &str) -> String {
    let text = url.trim().replace("&amp;", "&").replace("\\/", "/");
    let no_fragment = text.split_once('#').map_or(text.as_str(), |(a, _)| a);
    let rest = strip_scheme(no_fragment);
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    let Some(query) = query else {
        return rest.to_string();
    };
    let (host, path) = location
        .split_once('/')
        .map_or((location, ""), |(h, p)| (h, p));
    if !host.eq_ignore_ascii_case("mp.weixin.qq.com") || path != "s" {
        return rest.to_string();
    }
    let value_of = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let mut parts = Vec::with_capacity(IDENTITY_PARAMS.len());
    for name in IDENTITY_PARAMS {
        match value_of(name) {
            Some(v) => parts.push(format!("{name}={v}")),
            None => return rest.to_string(),
        }
    }
    format!("mp.weixin.qq.com/s?{}", parts.join("&"))
}

/// Drops `http://`, `https://` (any case) or a scheme-relative `//`.
fn strip_scheme(url: &str) -> &str {
    for scheme in ["https://", "http://", "//"] {
        // `get`, not indexing: the URL may start with a multi-byte character.
        if url
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        {
            return &url[scheme.len()..];
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::url_key;

    const KEY: &str =
        "mp.weixin.qq.com/s?__biz=Mz0123456789==&mid=2247401230&idx=2&sn=0a1b2c3d4e5f6789";

    #[test]
    fn any_text_keys_without_a_panic() {
        for text in [
            "一",
            "一二三四五六七八",
            "h一",
            "ht一tps://x",
            "",
            "//",
            "?",
            "#",
        ] {
            let _ = url_key(text);
        }
        assert_eq!(url_key("一二三"), "一二三");
    }

    #[test]
    fn datacube_url_shape_keys_to_the_four_parameters() {
        let url = "http://mp.weixin.qq.com/s?__biz=Mz0123456789==&mid=2247401230&idx=2&sn=0a1b2c3d4e5f6789#rd";
        assert_eq!(url_key(url), KEY);
    }

    #[test]
    fn scheme_extra_parameters_order_and_fragment_do_not_matter() {
        for url in [
            "https://mp.weixin.qq.com/s?__biz=Mz0123456789==&mid=2247401230&idx=2&sn=0a1b2c3d4e5f6789&chksm=fe01ab&scene=21#wechat_redirect",
            "http://mp.weixin.qq.com/s?__biz=Mz0123456789==&mid=2247401230&idx=2&sn=0a1b2c3d4e5f6789",
            "https://mp.weixin.qq.com/s?sn=0a1b2c3d4e5f6789&scene=126&idx=2&chksm=9f&mid=2247401230&__biz=Mz0123456789==",
            "HTTPS://mp.weixin.qq.com/s?__biz=Mz0123456789==&amp;mid=2247401230&amp;idx=2&amp;sn=0a1b2c3d4e5f6789&amp;chksm=1#rd",
            "  http:\\/\\/mp.weixin.qq.com\\/s?__biz=Mz0123456789==&mid=2247401230&idx=2&sn=0a1b2c3d4e5f6789#rd\n",
        ] {
            assert_eq!(url_key(url), KEY, "{url}");
        }
    }

    #[test]
    fn percent_encoding_is_kept() {
        let url = "https://mp.weixin.qq.com/s?__biz=MzA%3D%3D&mid=1&idx=1&sn=ab&scene=0";
        assert_eq!(
            url_key(url),
            "mp.weixin.qq.com/s?__biz=MzA%3D%3D&mid=1&idx=1&sn=ab"
        );
    }

    #[test]
    fn wxjava_sample_url_keys_as_itself_without_scheme_and_fragment() {
        // The URL of fixtures/peer/wxjava__freepublish_batchget_2021-10.json,
        // read through JSON (so `\/` is already `/`): no idx, no sn.
        let sample: serde_json::Value = serde_json::from_str(
            r#"{"url":"http:\/\/mp.weixin.qq.com\/s?__biz=MzAwMTE2MzA1Mg==&mid=26501776710e5adb91#rd"}"#,
        )
        .unwrap();
        let url = sample["url"].as_str().unwrap();
        assert_eq!(
            url_key(url),
            "mp.weixin.qq.com/s?__biz=MzAwMTE2MzA1Mg==&mid=26501776710e5adb91"
        );
    }

    #[test]
    fn other_urls_key_as_themselves_without_scheme_and_fragment() {
        assert_eq!(
            url_key("https://mp.weixin.qq.com/s/AbCdEf-12_x"),
            "mp.weixin.qq.com/s/AbCdEf-12_x"
        );
        assert_eq!(
            url_key("https://mp.weixin.qq.com/s/AbCdEf#top"),
            "mp.weixin.qq.com/s/AbCdEf"
        );
        assert_eq!(
            url_key("https://example.com/s?__biz=a&mid=b&idx=c&sn=d&x=1"),
            "example.com/s?__biz=a&mid=b&idx=c&sn=d&x=1"
        );
        assert_eq!(
            url_key("http://mp.weixin.qq.com/mp/appmsg/show?__biz=a&mid=b&idx=c&sn=d"),
            "mp.weixin.qq.com/mp/appmsg/show?__biz=a&mid=b&idx=c&sn=d"
        );
        assert_eq!(url_key(""), "");
    }
}
