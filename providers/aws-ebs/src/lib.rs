//! `velero.io/aws` volume snapshotter: EBS snapshots through the EC2 query API, as Velero's AWS
//! plugin takes them (DescribeVolumes, CreateSnapshot, DescribeSnapshots, CreateVolume,
//! DeleteSnapshot), and copies of them from another region (CopySnapshot, with the zone for
//! volumes from DescribeAvailabilityZones).
//!
//! Config: `region` (required), `profile`, and `ec2Url` (an endpoint other than
//! `https://ec2.<region>.amazonaws.com`, e.g. a test server). The EC2 client is bound to the
//! region, so a volume in another region fails its snapshot with an error naming the volume and
//! the region. Volumes are claimed from `awsElasticBlockStore.volumeID` (`aws://<zone>/vol-…`)
//! and from CSI volumes of driver `ebs.csi.aws.com`.

use coffer_guest_sdk::http::{self, Body};
use coffer_guest_sdk::sigv4::{self, AwsCredentials};
use coffer_guest_sdk::{Config, Credential, Error, Manifest, Result, SnapshotCopy, VolumeInfo, VolumeSnapshotter, xml};
use serde_json::Value;

/// The EC2 API version Velero's plugin uses.
const API_VERSION: &str = "2016-11-15";
const CSI_DRIVER: &str = "ebs.csi.aws.com";
const ZONE_LABELS: [&str; 2] = ["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"];

struct Ebs {
    endpoint: String,
    region: String,
    credentials: AwsCredentials,
}

/// `vol-…` from a volume ID field (`aws://us-east-1a/vol-123` or `vol-123`).
fn volume_id_of(text: &str) -> Option<String> {
    text.find("vol-").map(|i| text[i..].to_owned())
}

fn parse_pv(pv: &str) -> Result<Value> {
    serde_json::from_str(pv).map_err(|e| Error::InvalidArgument(format!("the PersistentVolume is not JSON: {e}")))
}

/// Tags of an EC2 `tagSet`.
fn tags(xml_text: &str) -> Vec<(String, String)> {
    xml::elements(xml_text, "tagSet")
        .first()
        .map(|set| {
            xml::elements(set, "item")
                .iter()
                .filter_map(|item| Some((xml::text(item, "key")?, xml::text(item, "value").unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default()
}

fn tag_params(params: &mut Vec<(String, String)>, resource: &str, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    params.push(("TagSpecification.1.ResourceType".into(), resource.into()));
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("TagSpecification.1.Tag.{}.Key", i + 1), k.clone()));
        params.push((format!("TagSpecification.1.Tag.{}.Value", i + 1), v.clone()));
    }
}

impl Ebs {
    /// Calls EC2 action `action` with `params`; the response body, or the error it carries.
    fn call(&self, action: &str, params: &[(String, String)]) -> Result<String> {
        let mut form = vec![("Action".to_owned(), action.to_owned()), ("Version".to_owned(), API_VERSION.to_owned())];
        form.extend(params.iter().cloned());
        let body = sigv4::canonical_query(&form);
        let host = self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, r)| r).split('/').next().unwrap_or_default().to_owned();
        let date = sigv4::amz_date_now();
        let hash = sigv4::sha256_hex(body.as_bytes());
        let mut headers = vec![
            ("content-type".to_owned(), "application/x-www-form-urlencoded; charset=utf-8".to_owned()),
            ("host".to_owned(), host),
            ("x-amz-date".to_owned(), date.clone()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        let request = sigv4::Request { method: "POST", path: "/", query: &[], headers: &headers, payload_hash: &hash };
        let auth = sigv4::authorization(&request, &self.credentials, &self.region, "ec2", &date);
        headers.retain(|(k, _)| k != "host");
        headers.push(("authorization".to_owned(), auth));
        headers.push(("content-length".to_owned(), body.len().to_string()));
        let url = format!("{}/", self.endpoint);
        let response = http::send("POST", &url, &headers, Body::Bytes(body.as_bytes()))?;
        let status = response.status;
        let text = response.text()?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let code = xml::text(&text, "Code").unwrap_or_default();
        let message = xml::text(&text, "Message").unwrap_or_default();
        let detail = format!("{action} in region {}: {code}: {message}", self.region);
        Err(match code.as_str() {
            c if c.ends_with(".NotFound") => Error::NotFound(detail),
            "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => Error::Unauthenticated(detail),
            "UnauthorizedOperation" => Error::PermissionDenied(detail),
            _ if status >= 500 => Error::Unavailable(detail),
            _ => Error::Other(detail),
        })
    }

    /// The zone of this region in which to make volumes from a snapshot of a volume that was in
    /// `source_zone`: the available zone with the same letter, else the first available one.
    fn zone_like(&self, source_zone: &str) -> Result<String> {
        let described = self.call("DescribeAvailabilityZones", &[])?;
        let zones: Vec<String> = xml::elements(&described, "item")
            .iter()
            .filter(|item| xml::text(item, "zoneState").is_none_or(|s| s == "available"))
            .filter_map(|item| xml::text(item, "zoneName"))
            .collect();
        let letter = source_zone.chars().last().filter(char::is_ascii_lowercase);
        zones
            .iter()
            .find(|z| letter.is_some() && z.chars().last() == letter)
            .or_else(|| zones.first())
            .cloned()
            .ok_or_else(|| Error::Other(format!("DescribeAvailabilityZones in region {} listed no available zone", self.region)))
    }

    /// DescribeVolumes of one volume; an error names the volume and the region.
    fn describe_volume(&self, volume_id: &str) -> Result<String> {
        self.call("DescribeVolumes", &[("VolumeId.1".into(), volume_id.into())]).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "volume {volume_id} was not found in region {} (EBS snapshots are taken in the volume's own region; use a volume snapshot location with that region)",
                self.region
            )),
            other => other,
        })
    }
}

impl VolumeSnapshotter for Ebs {
    fn manifest() -> Manifest {
        Manifest::new("velero.io/aws", "Amazon EBS snapshots (config: region, profile, ec2Url)")
            .endpoint_key("ec2Url")
            .endpoint_template("https://ec2.{region}.amazonaws.com")
    }

    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self> {
        let config = Config::parse(config, &["region", "profile", "ec2Url", "credentialsFile", "enableSharedConfig"])?;
        let region = config.get("region").filter(|r| !r.is_empty()).ok_or_else(|| Error::invalid_config("region", "missing region in aws configuration"))?.to_owned();
        let endpoint = match config.get("ec2Url").filter(|u| !u.is_empty()) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
            Some(url) => return Err(Error::invalid_config("ec2Url", format!("{url:?} must start with http:// or https://"))),
            None => format!("https://ec2.{region}.amazonaws.com"),
        };
        let credential = credential.ok_or_else(|| Error::Unauthenticated("no credential: give the location --credential or create the default credential".into()))?;
        let credentials = sigv4::parse_shared_credentials(&credential, config.get("profile").unwrap_or("default"))?;
        Ok(Ebs { endpoint, region, credentials })
    }

    fn create_volume_from_snapshot(&self, snapshot_id: &str, volume_type: &str, volume_az: &str, iops: Option<i64>) -> Result<String> {
        let described = self.call("DescribeSnapshots", &[("SnapshotId.1".into(), snapshot_id.into())])?;
        let encrypted = xml::text(&described, "encrypted").unwrap_or_else(|| "false".into());
        let mut params = vec![
            ("SnapshotId".to_owned(), snapshot_id.to_owned()),
            ("AvailabilityZone".to_owned(), volume_az.to_owned()),
            ("Encrypted".to_owned(), encrypted),
        ];
        if !volume_type.is_empty() {
            params.push(("VolumeType".into(), volume_type.into()));
        }
        if let Some(iops) = iops {
            params.push(("Iops".into(), iops.to_string()));
        }
        tag_params(&mut params, "volume", &tags(&described));
        let created = self.call("CreateVolume", &params)?;
        xml::text(&created, "volumeId").ok_or_else(|| Error::Other(format!("CreateVolume returned no volumeId: {created}")))
    }

    fn get_volume_id(&self, pv: &str) -> Result<Option<String>> {
        let pv = parse_pv(pv)?;
        if let Some(csi) = pv.pointer("/spec/csi") {
            if csi.get("driver").and_then(Value::as_str) != Some(CSI_DRIVER) {
                return Ok(None);
            }
            return Ok(csi.get("volumeHandle").and_then(Value::as_str).and_then(volume_id_of));
        }
        Ok(pv.pointer("/spec/awsElasticBlockStore/volumeID").and_then(Value::as_str).and_then(volume_id_of))
    }

    fn set_volume_id(&self, pv: &str, volume_id: &str) -> Result<String> {
        let mut pv = parse_pv(pv)?;
        if pv.pointer("/spec/csi").is_some() {
            pv["spec"]["csi"]["volumeHandle"] = Value::String(volume_id.into());
            return Ok(pv.to_string());
        }
        if pv.pointer("/spec/awsElasticBlockStore").is_none() {
            return Err(Error::InvalidArgument("the PersistentVolume is neither an EBS nor an EBS CSI volume".into()));
        }
        let zone = ZONE_LABELS
            .iter()
            .find_map(|l| pv.pointer("/metadata/labels").and_then(|labels| labels.get(*l)).and_then(Value::as_str).map(str::to_owned));
        pv["spec"]["awsElasticBlockStore"]["volumeID"] =
            Value::String(zone.map_or_else(|| volume_id.to_owned(), |z| format!("aws://{z}/{volume_id}")));
        Ok(pv.to_string())
    }

    fn get_volume_info(&self, volume_id: &str, _volume_az: &str) -> Result<VolumeInfo> {
        let described = self.describe_volume(volume_id)?;
        let volume_type = xml::text(&described, "volumeType").unwrap_or_default();
        let iops = if matches!(volume_type.as_str(), "io1" | "io2") { xml::text(&described, "iops").and_then(|i| i.parse().ok()) } else { None };
        Ok(VolumeInfo { volume_type, iops })
    }

    fn create_snapshot(&self, volume_id: &str, _volume_az: &str, velero_tags: Vec<(String, String)>) -> Result<String> {
        let described = self.describe_volume(volume_id)?;
        // The volume's tags, with Velero's tags over them.
        let mut merged: Vec<(String, String)> = tags(&described).into_iter().filter(|(k, _)| !velero_tags.iter().any(|(t, _)| t == k)).collect();
        merged.extend(velero_tags);
        let mut params = vec![("VolumeId".to_owned(), volume_id.to_owned())];
        tag_params(&mut params, "snapshot", &merged);
        let created = self.call("CreateSnapshot", &params)?;
        xml::text(&created, "snapshotId").ok_or_else(|| Error::Other(format!("CreateSnapshot returned no snapshotId: {created}")))
    }

    fn delete_snapshot(&self, snapshot_id: &str) -> Result<()> {
        match self.call("DeleteSnapshot", &[("SnapshotId".into(), snapshot_id.into())]) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn copy_snapshot(&self, snapshot_id: &str, source: Config, volume_az: &str, tags: Vec<(String, String)>) -> Result<SnapshotCopy> {
        let source_region = source
            .get("region")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::InvalidArgument("the source location's config has no region".into()))?;
        let mut params = vec![
            ("SourceRegion".to_owned(), source_region.to_owned()),
            ("SourceSnapshotId".to_owned(), snapshot_id.to_owned()),
            ("Description".to_owned(), format!("Copy of {snapshot_id} from {source_region}")),
        ];
        tag_params(&mut params, "snapshot", &tags);
        let copied = self.call("CopySnapshot", &params).map_err(|e| match e {
            Error::NotFound(m) => Error::NotFound(format!("snapshot {snapshot_id} in region {source_region}: {m}")),
            other => other,
        })?;
        let snapshot_id = xml::text(&copied, "snapshotId").ok_or_else(|| Error::Other(format!("CopySnapshot returned no snapshotId: {copied}")))?;
        Ok(SnapshotCopy { snapshot_id, volume_az: self.zone_like(volume_az)? })
    }
}

coffer_guest_sdk::export_volume_snapshotter!(Ebs);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_as_velero_parses_them() {
        assert_eq!(volume_id_of("aws://us-east-1c/vol-abc123").as_deref(), Some("vol-abc123"));
        assert_eq!(volume_id_of("vol-abc123").as_deref(), Some("vol-abc123"));
        assert_eq!(volume_id_of("something-else"), None);
    }

    #[test]
    fn tag_sets() {
        let x = "<volumeSet><item><volumeId>vol-1</volumeId><tagSet><item><key>a</key><value>1</value></item><item><key>b</key><value></value></item></tagSet></item></volumeSet>";
        assert_eq!(tags(x), [("a".to_owned(), "1".to_owned()), ("b".to_owned(), String::new())]);
    }
}
