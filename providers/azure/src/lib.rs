//! `velero.io/azure`: Azure Blob Storage over `wasi:http`, signed with SharedKey.
//!
//! Config (Velero's Azure plugin keys): `storageAccount` (required), `storageAccountURI` (an
//! endpoint other than `https://<account>.blob.core.windows.net`, such as Azurite's
//! `http://127.0.0.1:10000/devstoreaccount1`), `storageAccountKeyEnvVar` (the variable of the
//! credential holding the key, default `AZURE_STORAGE_KEY`), `blockSizeInBytes` (default
//! 8 MiB, at most 100 MiB), `resourceGroup` and `subscriptionId` (accepted; used only with
//! Azure AD), plus the injected `bucket` (the container), `prefix` and `caCert` (honoured by
//! the host, which makes the TLS connections). The credential is Velero's `AZURE_*` dotenv file.
//! A blob larger than one block is put block by block, one block in guest memory at a time
//! while up to [`BLOCKS_IN_FLIGHT`] earlier blocks await the service's answer.
//! Not supported yet, and refused by name: `useAAD=true`, `activeDirectoryAuthorityURI`.

mod shared_key;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_guest_sdk::http::{self, Body, Pending, Response};
use coffer_guest_sdk::paging::{self, Page};
use coffer_guest_sdk::streams::{InputStream, OutputStream};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, ObjectEntry, ObjectStore, Result, deleted, exists, upload, uri, xml};

use shared_key::API_VERSION;

const KEYS: &[&str] = &[
    "storageAccount", "storageAccountURI", "storageAccountKeyEnvVar", "resourceGroup", "subscriptionId", "useAAD",
    "activeDirectoryAuthorityURI", "blockSizeInBytes", "credentialsFile",
];
const DEFAULT_BLOCK: usize = 8 << 20;
const MAX_BLOCK: usize = 100 << 20;
/// Blocks whose bodies are sent and whose answers are still awaited.
const BLOCKS_IN_FLIGHT: usize = 3;

struct Blob {
    account: String,
    key: Vec<u8>,
    /// `scheme://authority`, and the path prefix (`/devstoreaccount1` on path-style endpoints).
    origin: String,
    base_path: String,
    block_size: usize,
}

/// `KEY=value` lines of a dotenv file (quotes and `export ` allowed).
fn dotenv(text: &str, name: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|line| {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').trim_matches('\'').to_owned())
    })
}

fn azure_error(what: &str, status: u16, body: &str) -> Error {
    let code = xml::text(body, "Code").unwrap_or_default();
    let message = xml::text(body, "Message").unwrap_or_default().lines().next().unwrap_or_default().to_owned();
    let text = format!("{what}: {status} {code} {message}").trim_end().to_owned();
    match code.as_str() {
        "AuthenticationFailed" | "InvalidAuthenticationInfo" => Error::Unauthenticated(text),
        _ => Error::from_status(status, text),
    }
}

impl Blob {
    /// The encoded URL path of `blob` in `container` (or of the container when `blob` is empty).
    fn path(&self, container: &str, blob: &str) -> String {
        if blob.is_empty() {
            format!("{}/{container}", self.base_path)
        } else {
            format!("{}/{container}/{}", self.base_path, uri::encode(blob, true))
        }
    }

    fn request(
        &self,
        method: &str,
        container: &str,
        blob: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: Body<'_>,
    ) -> Result<Response> {
        self.start(method, container, blob, query, extra, body)?.wait()
    }

    /// Sends one signed request without waiting for its response.
    fn start(
        &self,
        method: &str,
        container: &str,
        blob: &str,
        query: &[(String, String)],
        extra: &[(String, String)],
        body: Body<'_>,
    ) -> Result<Pending> {
        let path = self.path(container, blob);
        let mut headers = vec![
            ("x-ms-date".to_owned(), shared_key::rfc1123(shared_key::unix_now())),
            ("x-ms-version".to_owned(), API_VERSION.to_owned()),
        ];
        headers.extend(extra.iter().cloned());
        let auth = shared_key::authorization(&self.account, &self.key, method, &path, query, &headers);
        headers.push(("authorization".to_owned(), auth));
        let url = format!("{}{path}{}{}", self.origin, if query.is_empty() { "" } else { "?" }, uri::query(query));
        http::start(method, &url, &headers, body)
    }

    fn checked(what: &str, response: Response) -> Result<Response> {
        response.success_or(what, azure_error)
    }

    fn put_block_blob(&self, container: &str, blob: &str, bytes: &[u8]) -> Result<()> {
        let headers = [
            ("x-ms-blob-type".to_owned(), "BlockBlob".to_owned()),
            ("content-length".to_owned(), bytes.len().to_string()),
        ];
        let response = self.request("PUT", container, blob, &[], &headers, Body::Bytes(bytes))?;
        Self::checked(&format!("Put Blob {blob}"), response).map(drop)
    }

    /// One page of List Blobs for `prefix` (and `delimiter`), from `marker` on.
    fn page(&self, container: &str, prefix: &str, delimiter: Option<&str>, marker: Option<&str>) -> Result<Page> {
        let mut query = vec![
            ("comp".to_owned(), "list".to_owned()),
            ("maxresults".to_owned(), "1000".to_owned()),
            ("prefix".to_owned(), prefix.to_owned()),
            ("restype".to_owned(), "container".to_owned()),
        ];
        if let Some(d) = delimiter {
            query.push(("delimiter".to_owned(), d.to_owned()));
        }
        if let Some(m) = marker {
            query.push(("marker".to_owned(), m.to_owned()));
        }
        let response = self.request("GET", container, "", &query, &[], Body::Empty)?;
        let text = Self::checked(&format!("List Blobs {prefix}"), response)?.text()?;
        Ok(Page {
            objects: xml::elements(&text, "Blob")
                .iter()
                .map(|b| paging::object(&format!("List Blobs {prefix}"), xml::text(b, "Name"), xml::text(b, "Content-Length")))
                .collect::<Result<_>>()?,
            prefixes: xml::elements(&text, "BlobPrefix").iter().filter_map(|p| xml::text(p, "Name")).collect(),
            next: xml::text(&text, "NextMarker"),
        })
    }
}

/// A block blob being written block by block.
struct Blocks<'a> {
    store: &'a Blob,
    container: &'a str,
    blob: &'a str,
    ids: Vec<String>,
}

impl upload::Parts for Blocks<'_> {
    fn send(&mut self, number: usize, bytes: &[u8]) -> Result<Pending> {
        let id = STANDARD.encode(format!("coffer-{:08}", number - 1));
        let query = [("comp".to_owned(), "block".to_owned()), ("blockid".to_owned(), id.clone())];
        let headers = [("content-length".to_owned(), bytes.len().to_string())];
        self.ids.push(id);
        self.store.start("PUT", self.container, self.blob, &query, &headers, Body::Bytes(bytes))
    }

    fn answered(&mut self, number: usize, response: Response) -> Result<()> {
        Blob::checked(&format!("Put Block {} of {}", number - 1, self.blob), response).map(drop)
    }

    fn complete(self) -> Result<()> {
        let list: String = self.ids.iter().map(|id| format!("<Latest>{id}</Latest>")).collect();
        let document = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>");
        let headers = [("content-length".to_owned(), document.len().to_string())];
        let query = [("comp".to_owned(), "blocklist".to_owned())];
        let response = self.store.request("PUT", self.container, self.blob, &query, &headers, Body::Bytes(document.as_bytes()))?;
        Blob::checked(&format!("Put Block List of {}", self.blob), response).map(drop)
    }

    /// Blocks never committed are discarded by the service (after a week).
    fn abort(self) {}
}

impl ObjectStore for Blob {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/azure", "Azure Blob Storage (config: storageAccount, storageAccountURI, ...)")
            .endpoint_key("storageAccountURI")
            .endpoint_template("https://{storageAccount}.blob.core.windows.net")
    }

    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse_object_store(config, KEYS)?;
        if config.bool("useAAD")? == Some(true) {
            return Err(Error::invalid_config("useAAD", "Azure AD authentication is not supported yet; use a storage account key"));
        }
        if config.get("activeDirectoryAuthorityURI").is_some() {
            return Err(Error::invalid_config("activeDirectoryAuthorityURI", "Azure AD authentication is not supported yet"));
        }
        let account = config.require("storageAccount")?.to_owned();
        let endpoint = match config.get("storageAccountURI").filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_owned(),
            Some(u) => return Err(Error::invalid_config("storageAccountURI", format!("{u:?} must start with http:// or https://"))),
            None => format!("https://{account}.blob.core.windows.net"),
        };
        let (scheme, rest) = endpoint.split_once("://").expect("checked above");
        let (authority, base_path) = rest.split_once('/').map_or((rest, String::new()), |(a, p)| (a, format!("/{p}")));
        let block_size = match config.parsed::<usize>("blockSizeInBytes") {
            Ok(Some(size)) if size > 0 && size <= MAX_BLOCK => size,
            _ => DEFAULT_BLOCK,
        };
        let credential = credential.ok_or_else(|| Error::Unauthenticated("no credential: give the location --credential or create the default credential".into()))?;
        let var = config.get("storageAccountKeyEnvVar").unwrap_or("AZURE_STORAGE_KEY");
        let key_text = dotenv(credential.expose_str()?, var)
            .ok_or_else(|| Error::Unauthenticated(format!("the credential has no {var} (the storage account key)")))?;
        let key = STANDARD.decode(key_text.as_bytes()).map_err(|_| Error::Unauthenticated(format!("{var} in the credential is not base64")))?;
        Ok(Blob { account, key, origin: format!("{scheme}://{authority}"), base_path, block_size })
    }

    fn put_object(&self, container: &str, blob: &str, body: InputStream) -> Result<u64> {
        let blocks = || Ok(Blocks { store: self, container, blob, ids: Vec::new() });
        upload::put(&body, self.block_size, BLOCKS_IN_FLIGHT, |bytes| self.put_block_blob(container, blob, bytes), blocks)
    }

    fn object_exists(&self, container: &str, blob: &str) -> Result<bool> {
        let response = self.request("HEAD", container, blob, &[], &[], Body::Empty)?;
        exists(Self::checked(&format!("Get Blob Properties {blob}"), response).map(drop))
    }

    fn get_object(&self, container: &str, blob: &str, sink: OutputStream) -> Result<u64> {
        let response = self.request("GET", container, blob, &[], &[], Body::Empty)?;
        Self::checked(&format!("Get Blob {blob}"), response)?.splice_into(&sink)
    }

    fn get_object_range(&self, container: &str, blob: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64> {
        let headers = [("x-ms-range".to_owned(), http::range(offset, length))];
        let response = self.request("GET", container, blob, &[], &headers, Body::Empty)?;
        response.splice_range_into(&format!("Get Blob {blob}"), azure_error, offset, length, &sink)
    }

    fn list_common_prefixes(&self, container: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>> {
        paging::prefixes(|marker| self.page(container, prefix, Some(delimiter), marker))
    }

    fn list_objects(&self, container: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        paging::objects(|marker| self.page(container, prefix, None, marker))
    }

    fn delete_object(&self, container: &str, blob: &str) -> Result<()> {
        let response = self.request("DELETE", container, blob, &[], &[], Body::Empty)?;
        deleted(Self::checked(&format!("Delete Blob {blob}"), response).map(drop))
    }

    fn create_signed_url(&self, container: &str, blob: &str, ttl: Duration) -> Result<String> {
        let expiry = shared_key::iso8601(shared_key::unix_now() + ttl.as_secs().max(1));
        let sas = shared_key::blob_read_sas(&self.account, &self.key, container, blob, &expiry);
        Ok(format!("{}{}?{}", self.origin, self.path(container, blob), uri::query(&sas)))
    }
}

coffer_guest_sdk::export_object_store!(Blob);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values() {
        let text = "AZURE_SUBSCRIPTION_ID=sub\nexport AZURE_STORAGE_KEY=\"a2V5\"\n# AZURE_CLOUD_NAME=x\n";
        assert_eq!(dotenv(text, "AZURE_STORAGE_KEY").as_deref(), Some("a2V5"));
        assert_eq!(dotenv(text, "AZURE_CLOUD_NAME"), None);
    }
}
