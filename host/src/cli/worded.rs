//! The service's errors worded for a person at the command line: the fields at fault as the
//! flags that set them.

use coffer::api::{ApiError, ClientError, Reason};

/// Object fields and the flags that set them.
const FLAGS: &[(&str, &str)] = &[
    ("spec.provider", "--provider"),
    ("spec.objectStorage.bucket", "--bucket"),
    ("spec.objectStorage.prefix", "--prefix"),
    ("spec.credential", "--credential"),
    ("spec.schedule", "--schedule"),
    ("metadata.annotations[coffer.io/source-directory]", "--source"),
    ("metadata.annotations[coffer.io/target-directory]", "--target"),
];

/// `e` as a person at the command line reads it.
pub fn error(e: anyhow::Error) -> anyhow::Error {
    let Some(api) = e.downcast_ref::<ApiError>() else { return e };
    if api.reason == Reason::Unauthorized {
        return anyhow::anyhow!("the server refused the token: {}", api.message);
    }
    let Some(field) = &api.field else { return e };
    let Some(flag) = FLAGS.iter().find(|(f, _)| f == field).map(|(_, flag)| flag) else { return e };
    let mut message = api.message.clone();
    for (field, flag) in FLAGS {
        message = message.replace(field, flag);
    }
    if !message.contains(flag) {
        message = format!("{flag}: {message}");
    }
    if message.contains("unknown provider") {
        message.push_str(" (the host's operator adds providers with `coffer plugin add FILE.wasm`)");
    }
    anyhow::anyhow!(message)
}

/// A client that could not be set up, worded with the flags that set it up.
pub fn client(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Url { .. } => anyhow::anyhow!("--server: {e}"),
        ClientError::CaBundle { .. } => anyhow::anyhow!("--server-cacert: {e}"),
        other => other.into(),
    }
}
