//! Paged listings: a provider writes one function that fetches one page of its service's
//! listing, and gets both contract listings (keys, and common prefixes) from it.

use crate::error::{Error, Result};
use crate::export::ObjectEntry;

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Objects on this page.
    pub objects: Vec<ObjectEntry>,
    /// Common prefixes on this page (listings with a delimiter).
    pub prefixes: Vec<String>,
    /// The token of the next page; none (or empty) on the last.
    pub next: Option<String>,
}

/// One entry of a listing from the key and size fields a service sent (as text), or an error
/// naming `listing` and what is missing.
pub fn object(listing: &str, key: Option<String>, size: Option<String>) -> Result<ObjectEntry> {
    let key = key.ok_or_else(|| Error::Other(format!("{listing}: an entry without a key")))?;
    match size.as_deref().map(str::parse) {
        Some(Ok(size)) => Ok(ObjectEntry { key, size }),
        _ => Err(Error::Other(format!("{listing}: {key:?} has no valid size ({size:?})"))),
    }
}

/// Fetches every page: `fetch` gets the token of the page wanted (none for the first) and
/// hands each page to `take`. A service that hands back a token it was just given is refused
/// rather than listed forever.
pub fn each_page(mut fetch: impl FnMut(Option<&str>) -> Result<Page>, mut take: impl FnMut(Page)) -> Result<()> {
    let mut token: Option<String> = None;
    loop {
        let mut page = fetch(token.as_deref())?;
        let next = page.next.take().filter(|t| !t.is_empty());
        take(page);
        match next {
            None => return Ok(()),
            Some(next) if token.as_deref() == Some(next.as_str()) => {
                return Err(Error::Other(format!("the listing handed back the page token {next:?} it was given; stopped")));
            }
            Some(next) => token = Some(next),
        }
    }
}

/// Every object of the listing `fetch` pages through.
pub fn objects(fetch: impl FnMut(Option<&str>) -> Result<Page>) -> Result<Vec<ObjectEntry>> {
    let mut out = Vec::new();
    each_page(fetch, |page| out.extend(page.objects))?;
    Ok(out)
}

/// Every common prefix of the listing `fetch` pages through.
pub fn prefixes(fetch: impl FnMut(Option<&str>) -> Result<Page>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    each_page(fetch, |page| out.extend(page.prefixes))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[&str], next: Option<&str>) -> Page {
        Page { objects: keys.iter().map(|k| ObjectEntry { key: k.to_string(), size: k.len() as u64 }).collect(), prefixes: vec![format!("{}/", keys[0])], next: next.map(str::to_owned) }
    }

    #[test]
    fn every_page_is_fetched_once_in_order() {
        let mut asked = Vec::new();
        let all = objects(|token| {
            asked.push(token.map(str::to_owned));
            Ok(match token {
                None => page(&["a", "b"], Some("t1")),
                Some("t1") => page(&["c"], Some("")),
                Some(other) => panic!("asked for {other}"),
            })
        })
        .unwrap();
        assert_eq!(all.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(asked, [None, Some("t1".to_owned())]);
        let found = prefixes(|token| Ok(if token.is_none() { page(&["x"], Some("n")) } else { page(&["y"], None) })).unwrap();
        assert_eq!(found, ["x/", "y/"]);
    }

    #[test]
    fn a_service_repeating_its_token_is_stopped() {
        let err = objects(|_| Ok(page(&["a"], Some("same")))).unwrap_err();
        assert!(matches!(err, Error::Other(ref m) if m.contains("\"same\"")), "{err}");
    }
}
