//! The state in etcd (v3), which several servers share. A transaction reads one revision of
//! the store and buffers its writes; it commits as one etcd transaction that holds only if
//! nothing it read has changed since (each key's modification revision, and for each listing
//! the generation key that every change in that kind and namespace bumps). When something
//! did, the transaction runs again on the new revision, as etcd's own STM does: writes are
//! serializable across servers.
//!
//! The etcd client is asynchronous and the state's interface is not; its calls run on a
//! runtime of the store's own, so they may be made from anywhere, async code included.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_client::{Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions, TlsOptions, TxnOp};
use tokio::sync::watch;

use super::{StateError, StateHealth};
use crate::secret::SecretBytes;

/// The prefix of every key when the URL names none.
const DEFAULT_PREFIX: &str = "coffer";

/// The keys of one state, all under its prefix (`coffer` unless the URL names another).
#[derive(Debug)]
struct Keys {
    /// Objects: `<prefix>/objects/<kind>\0<namespace>\0<name>`.
    objects: String,
    /// Generations: `<prefix>/generations/<kind>` and `…/<kind>\0<namespace>`, bumped by
    /// every change of an object of that kind (in that namespace), so that a listing can be
    /// checked.
    generations: String,
    /// Written by [`Etcd::probe`].
    probe: String,
    /// Members: `<prefix>/members/<id>`, each under its process's lease.
    members: String,
    /// The member whose servers' controllers act (under its lease).
    leader: String,
    /// Runs in progress: `<prefix>/holds/<object key>`, each under the lease of the process
    /// running it, so that it goes when that process does.
    holds: String,
    /// Runs started and not ended, whatever became of their process: `<prefix>/running/<object
    /// key>`, written with the hold and removed with its release (under no lease), so that the
    /// runs a process left are found without listing every object of their kind.
    running: String,
}

impl Keys {
    fn under(prefix: &str) -> Keys {
        Keys {
            objects: format!("{prefix}/objects/"),
            generations: format!("{prefix}/generations/"),
            probe: format!("{prefix}/probe"),
            members: format!("{prefix}/members/"),
            leader: format!("{prefix}/leader"),
            holds: format!("{prefix}/holds/"),
            running: format!("{prefix}/running/"),
        }
    }

    /// An object's key in etcd.
    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.objects)
    }

    /// The generation key of `kind` (in `namespace`).
    fn generation(&self, kind: &str, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!("{}{kind}\u{0}{ns}", self.generations),
            None => format!("{}{kind}", self.generations),
        }
    }
}
/// How long a process's lease lasts without renewal: how soon the others learn it is gone.
const LEASE_TTL: i64 = 5;
/// How often a server that does not lead looks whether it may.
const CAMPAIGN_INTERVAL: Duration = Duration::from_millis(500);
/// How many keys one request of a listing reads.
const PAGE: i64 = 500;
/// How often a transaction runs before it gives up to others changing what it reads.
const TRIES: u32 = 64;
/// How long a call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A value, and the revision it was last changed at.
type Versioned = (Vec<u8>, i64);
/// A key and its value.
type Entry = (String, Vec<u8>);
/// A key's modification revision as a transaction read it (0: absent), and its value.
type Read = (i64, Option<Vec<u8>>);

/// An etcd cluster to keep the state in (`--state etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`),
/// and how to reach it, as etcd's own clients are told: TLS with a CA, a client certificate,
/// a user and password.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdOptions {
    /// The members, `HOST:PORT`.
    pub members: Vec<String>,
    /// What every key of this state begins with (`coffer`), so that several states may share
    /// one cluster.
    pub prefix: String,
    /// TLS to the members (`None`: plain HTTP).
    pub tls: Option<EtcdTls>,
    /// The user to authenticate as, when etcd's authentication is on.
    pub user: Option<EtcdUser>,
}

/// TLS to etcd's members.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EtcdTls {
    /// PEM certificates to trust for the members (those alone are trusted).
    pub ca: Vec<u8>,
    /// A client certificate and its key, PEM, for members that ask for one.
    pub identity: Option<(Vec<u8>, SecretBytes)>,
}

/// A user of etcd's authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdUser {
    /// The user's name.
    pub name: String,
    /// Its password.
    pub password: SecretBytes,
}

/// Parses `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`; the error names the value and what is
/// wrong.
pub fn parse_etcd_url(value: &str) -> Result<EtcdOptions, String> {
    const SHAPE: &str = "expected etcd://HOST:PORT[,HOST:PORT...][/PREFIX]";
    let wrong = |why: &str| format!("state location {value:?}: {why}; {SHAPE}");
    if value.contains('@') {
        // Not echoed: what precedes the @ may be a password.
        return Err(format!("state location: credentials do not go in the etcd:// URL (use --etcd-user and --etcd-password-file); {SHAPE}"));
    }
    let rest = value.strip_prefix("etcd://").ok_or_else(|| wrong("not an etcd:// URL"))?;
    let (members, prefix) = rest.split_once('/').unwrap_or((rest, DEFAULT_PREFIX));
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)) {
        return Err(wrong(&format!("prefix {prefix:?} is not letters, digits, '-', '_', '.' and '/'")));
    }
    let mut found = Vec::new();
    for member in members.split(',').map(str::trim) {
        let url = url::Url::parse(&format!("http://{member}")).map_err(|e| wrong(&format!("member {member:?}: {e}")))?;
        let plain = url.path() == "/" && url.query().is_none();
        match (url.host_str(), url.port(), plain) {
            (Some(host), Some(port), true) => found.push(format!("{host}:{port}")),
            _ => return Err(wrong(&format!("member {member:?} is not HOST:PORT"))),
        }
    }
    Ok(EtcdOptions { members: found, prefix: prefix.to_owned(), tls: None, user: None })
}

impl EtcdOptions {
    /// The members' client URLs: `https://` with TLS, else `http://`.
    fn endpoints(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.members.iter().map(|m| format!("{scheme}://{m}")).collect()
    }

    /// How to connect, as the client takes it.
    fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(CALL_TIMEOUT);
        if let Some(user) = &self.user {
            options = options.with_user(&user.name, String::from_utf8_lossy(user.password.expose()).into_owned());
        }
        if let Some(tls) = &self.tls {
            let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(cert, key.expose()));
            }
            options = options.with_tls(config);
        }
        options
    }

    /// How errors name it: `etcd://MEMBERS/PREFIX`.
    fn name(&self) -> String {
        let scheme = if self.tls.is_some() { " (TLS)" } else { "" };
        format!("etcd://{}/{}{scheme}", self.members.join(","), self.prefix)
    }
}

/// The state in an etcd cluster, and this process's membership of the processes sharing it:
/// a lease it keeps alive, with its member key under it. Every write it commits requires that
/// key to be under that lease still, so a process whose lease lapsed (paused, cut off) writes
/// nothing more; it learns so, and stops.
pub struct Etcd {
    /// How errors name it: `etcd://…`.
    name: String,
    /// Its keys.
    keys: Keys,
    client: Client,
    /// This process's member ID.
    member: String,
    /// Its lease.
    lease: i64,
    /// Set when the lease is known to be gone.
    lost: Arc<watch::Sender<bool>>,
    /// The runtime its calls run on (taken when it is dropped).
    runtime: Option<tokio::runtime::Runtime>,
    health: Mutex<StateHealth>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // It leaves at once: with its lease go its member key, its holds and its lead, so
            // another leads without waiting for the lease to run out.
            let (mut leases, lease) = (self.client.lease_client(), self.lease);
            let _ = block(&runtime, async move { tokio::time::timeout(Duration::from_secs(2), leases.revoke(lease)).await });
            // Without waiting: it may be dropped inside another runtime.
            runtime.shutdown_background();
        }
    }
}

impl Etcd {
    /// Connects to the cluster and checks that it answers.
    pub fn connect(options: &EtcdOptions) -> Result<Etcd, StateError> {
        let name = options.name();
        let path = name.clone();
        let err = |message: String| StateError::Database { path: path.clone(), message };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coffer-etcd")
            .enable_all()
            .build()
            .map_err(|e| err(e.to_string()))?;
        let keys = Keys::under(&options.prefix);
        match Etcd::join(&runtime, options, &keys, &err) {
            Ok(Joined { client, member, lease, lost }) => {
                let health = Mutex::new(StateHealth { writable: true, ..StateHealth::default() });
                Ok(Etcd { name, keys, client, member, lease, lost, runtime: Some(runtime), health })
            }
            Err(e) => {
                // Without waiting: it may be dropped inside another runtime.
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    /// Connects on `runtime` and joins the processes sharing the state: a lease kept alive
    /// there, and a member key under it.
    fn join(runtime: &tokio::runtime::Runtime, options: &EtcdOptions, keys: &Keys, err: &impl Fn(String) -> StateError) -> Result<Joined, StateError> {
        let (endpoints, connect) = (options.endpoints(), options.connect_options());
        let refused = |e: etcd_client::Error| err(unanswered(e, options.tls.is_some()));
        // With a user, connecting authenticates; either way a first call says whether anything
        // answers (the client connects lazily).
        let client = block(runtime, async move { Client::connect(endpoints, Some(connect)).await }).map_err(refused)?;
        let mut leases = client.lease_client();
        let granted = block(runtime, async move { leases.grant(LEASE_TTL, None).await }).map_err(refused)?;
        let lease = granted.id();
        let member = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        let mut kv = client.kv_client();
        let (key, value) = (format!("{}{member}", keys.members), member.clone());
        block(runtime, async move { kv.put(key, value, Some(PutOptions::new().with_lease(lease))).await }).map_err(|e| err(e.to_string()))?;
        let lost = Arc::new(watch::Sender::new(false));
        runtime.spawn(keep_alive(client.clone(), lease, lost.clone()));
        Ok(Joined { client, member, lease, lost })
    }

    /// The endpoints, as `etcd://…`.
    pub fn path(&self) -> &str {
        &self.name
    }

    /// This process's member ID.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// Resolves when this process's lease is gone: it may write nothing more.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut lost = self.lost.subscribe();
        async move {
            let _ = lost.wait_for(|gone| *gone).await;
        }
    }

    /// Waits until this process leads: it holds the leader key, under its lease, so that it
    /// leads as long as it lives and another takes over within a lease's time of its end.
    pub fn lead(&self) -> impl Future<Output = ()> + Send + 'static {
        let (client, member, lease, leader) = (self.client.clone(), self.member.clone(), self.lease, self.keys.leader.clone());
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the store").handle().clone();
        let (done, led) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            loop {
                let mut kv = client.kv_client();
                let claim = etcd_client::Txn::new()
                    .when([Compare::create_revision(leader.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(leader.as_str(), member.clone(), Some(PutOptions::new().with_lease(lease)))]);
                if kv.txn(claim).await.is_ok_and(|r| r.succeeded()) {
                    let _ = done.send(());
                    return;
                }
                tokio::time::sleep(CAMPAIGN_INTERVAL).await;
            }
        });
        async move {
            let _ = led.await;
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Database { path: self.name.clone(), message: e.to_string() }
    }

    fn health_mut(&self) -> MutexGuard<'_, StateHealth> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the state has fared.
    pub fn health(&self) -> StateHealth {
        self.health_mut().clone()
    }

    /// Runs `call` on the store's runtime and waits for it.
    fn run<T: Send + 'static>(&self, call: impl Future<Output = T> + Send + 'static) -> T {
        block(self.runtime.as_ref().expect("the runtime lives as long as the store"), call)
    }

    /// The value and modification revision of `key` (absent: `None`), at `revision` (the
    /// newest: `None`); and the revision read at.
    fn get(&self, key: &str, revision: Option<i64>) -> Result<(Option<Versioned>, i64), StateError> {
        let mut kv = self.client.kv_client();
        let options = GetOptions::new().with_revision(revision.unwrap_or(0));
        let key = key.to_owned();
        let response = self.run(async move { kv.get(key, Some(options)).await }).map_err(|e| self.error(e))?;
        let at = response.header().map_or(0, |h| h.revision());
        Ok((response.kvs().first().map(|kv| (kv.value().to_vec(), kv.mod_revision())), at))
    }

    /// The keys from `start` to `end` (exclusive) with their values, at `revision` (the newest:
    /// `None`), read a page at a time, every page at the same revision; and that revision.
    fn range(&self, start: &str, end: &str, revision: Option<i64>) -> Result<(Vec<Entry>, i64), StateError> {
        let mut out = Vec::new();
        let mut from = start.as_bytes().to_vec();
        let mut revision = revision;
        loop {
            let mut kv = self.client.kv_client();
            let options = GetOptions::new().with_range(end).with_revision(revision.unwrap_or(0)).with_limit(PAGE);
            let key = from.clone();
            let response = self.run(async move { kv.get(key, Some(options)).await }).map_err(|e| self.error(e))?;
            let at = *revision.get_or_insert(response.header().map_or(0, |h| h.revision()));
            for kv in response.kvs() {
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                out.push((key, kv.value().to_vec()));
            }
            match (response.more(), response.kvs().last()) {
                (true, Some(last)) => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok((out, at)),
            }
        }
    }

    /// A transaction on the newest revision (fixed at its first read).
    pub fn transaction(&self) -> Txn<'_> {
        Txn {
            etcd: self,
            writable: false,
            revision: Mutex::new(None),
            seen: Mutex::new(BTreeMap::new()),
            writes: BTreeMap::new(),
            touched: BTreeSet::new(),
            holds: BTreeMap::new(),
        }
    }

    /// Runs `f` in a transaction and commits what it wrote if nothing it read has changed
    /// meanwhile; otherwise runs it again on the newest revision.
    pub fn write<R, E: From<StateError>>(&self, mut f: impl FnMut(&mut super::Txn<'_>) -> Result<R, E>) -> Result<R, E> {
        for attempt in 0..TRIES {
            let mut txn = self.transaction();
            txn.writable = true;
            let mut shared = super::Txn { inner: super::Inner::Etcd(txn) };
            let out = f(&mut shared)?;
            let super::Inner::Etcd(txn) = shared.inner else { unreachable!("built as an etcd transaction") };
            match self.commit(txn) {
                Ok(true) => {
                    self.health_mut().writable = true;
                    return Ok(out);
                }
                // Another writer changed what it read: again, after a moment that grows.
                Ok(false) => std::thread::sleep(Duration::from_millis(u64::from(attempt.min(20)) + rand::random::<u64>() % 5)),
                Err(e) => {
                    let mut health = self.health_mut();
                    health.writable = false;
                    health.write_failures += 1;
                    health.last_error = Some(e.to_string());
                    return Err(e.into());
                }
            }
        }
        Err(StateError::Contended { path: self.name.clone(), tries: TRIES }.into())
    }

    /// Commits `txn`'s writes if nothing it read changed since; whether it did.
    fn commit(&self, txn: Txn<'_>) -> Result<bool, StateError> {
        if txn.writes.is_empty() && txn.holds.is_empty() {
            return Ok(true);
        }
        let seen = txn.seen.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut compares: Vec<Compare> =
            seen.iter().map(|(key, (revision, _))| Compare::mod_revision(key.as_bytes(), CompareOp::Equal, *revision)).collect();
        // Fenced: only while this process's lease holds.
        let member_key = format!("{}{}", self.keys.members, self.member);
        compares.push(Compare::lease(member_key.clone(), CompareOp::Equal, self.lease));
        let mut operations: Vec<TxnOp> = txn
            .writes
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(key, value, None),
                None => TxnOp::delete(key, None),
            })
            .collect();
        operations.extend(txn.touched.into_iter().map(|generation| TxnOp::put(generation, Vec::new(), None)));
        for (key, hold) in txn.holds {
            let (held, running) = (format!("{}{key}", self.keys.holds), format!("{}{key}", self.keys.running));
            operations.extend(match hold {
                true => [TxnOp::put(held, self.member.clone(), Some(PutOptions::new().with_lease(self.lease))), TxnOp::put(running, self.member.clone(), None)],
                false => [TxnOp::delete(held, None), TxnOp::delete(running, None)],
            });
        }
        let mut kv = self.client.kv_client();
        let request = etcd_client::Txn::new().when(compares).and_then(operations);
        let response = self.run(async move { kv.txn(request).await }).map_err(|e| self.error(e))?;
        if response.succeeded() {
            return Ok(true);
        }
        // A conflict, unless this process's lease is gone.
        match self.get(&member_key, None)? {
            (Some(_), _) => Ok(false),
            (None, _) => {
                self.lost.send_replace(true);
                Err(StateError::Fenced { path: self.name.clone(), member: self.member.clone() })
            }
        }
    }

    /// Whether etcd takes a write now.
    pub fn probe(&self) -> bool {
        let mut kv = self.client.kv_client();
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let probe = self.keys.probe.clone();
        let written = self.run(async move { kv.put(probe, stamp, None).await }).is_ok();
        self.health_mut().writable = written;
        written
    }
}

/// Words the failure of a first call: etcd's own refusal (a wrong password, a permission) as
/// it says it; anything else as no answer, over TLS or not.
fn unanswered(e: etcd_client::Error, tls: bool) -> String {
    match &e {
        etcd_client::Error::GRpcStatus(status) if status.message().starts_with("etcdserver:") => status.message().to_owned(),
        _ if tls => format!("does not answer over TLS: {e}"),
        _ => format!("does not answer over plain HTTP (members serving TLS need --etcd-cacert): {e}"),
    }
}

/// A process's membership of those sharing the state, as [`Etcd::join`] makes it.
struct Joined {
    client: Client,
    member: String,
    lease: i64,
    /// Set when the lease is known to be gone (by the task keeping it alive).
    lost: Arc<watch::Sender<bool>>,
}

/// Keeps `lease` alive, renewing it a third of its time to live apart; tells `lost` when etcd
/// says it is gone. While etcd does not answer it tries again: a lease outlives a restart of
/// etcd's leader, and this process writes nothing meanwhile anyway.
async fn keep_alive(client: Client, lease: i64, lost: Arc<watch::Sender<bool>>) {
    let period = Duration::from_millis(LEASE_TTL as u64 * 1000 / 3);
    let mut stream = None;
    loop {
        tokio::time::sleep(period).await;
        if stream.is_none() {
            stream = client.lease_client().keep_alive(lease).await.ok();
        }
        let Some((keeper, answers)) = stream.as_mut() else { continue };
        let renewed = tokio::time::timeout(period, async {
            keeper.keep_alive().await?;
            answers.message().await
        })
        .await;
        let gone = match renewed {
            Ok(Ok(Some(answer))) => answer.ttl() <= 0,
            // The stream broke (etcd restarted, or is unreachable, or the lease is gone): a
            // new one next time, unless etcd says the lease is no more.
            _ => {
                stream = None;
                let asked = tokio::time::timeout(period, client.lease_client().time_to_live(lease, None)).await;
                matches!(asked, Ok(Ok(answer)) if answer.ttl() < 0)
            }
        };
        if gone {
            tracing::error!(lease, "this process's lease in the shared state expired");
            lost.send_replace(true);
            return;
        }
    }
}

/// Runs `call` on `runtime` and waits for its end, from any thread. On a worker of a
/// multi-threaded runtime, the worker's other tasks move to another thread while it waits,
/// so that many calls waiting on etcd at once never hold up the API or the controllers.
fn block<T: Send + 'static>(runtime: &tokio::runtime::Runtime, call: impl Future<Output = T> + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = done.send(call.await);
    });
    let wait = || result.recv().expect("the store's runtime runs every call to its end");
    let on_worker = tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if on_worker { tokio::task::block_in_place(wait) } else { wait() }
}

/// A transaction: reads at one revision, writes buffered until the commit.
pub struct Txn<'a> {
    etcd: &'a Etcd,
    /// Whether it may write (a write transaction).
    writable: bool,
    /// The revision every read is at: the newest at its first read.
    revision: Mutex<Option<i64>>,
    /// Each etcd key read, with its modification revision then (0: absent) and its value.
    seen: Mutex<BTreeMap<String, Read>>,
    /// What it writes, by object key: a value, or `None` to delete.
    writes: BTreeMap<String, Option<Vec<u8>>>,
    /// The generation keys of what it writes.
    touched: BTreeSet<String>,
    /// Runs it holds (`true`) or releases (`false`), by object key.
    holds: BTreeMap<String, bool>,
}

impl Txn<'_> {
    /// Says `message` as this store's error.
    pub(super) fn error(&self, message: String) -> StateError {
        self.etcd.error(message)
    }

    /// Reads etcd key `key` at the transaction's revision (once: again, it answers what it
    /// read), noting it as read.
    fn read(&self, key: String) -> Result<Option<Vec<u8>>, StateError> {
        if let Some((_, value)) = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(value.clone());
        }
        let mut revision = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        let (found, at) = self.etcd.get(&key, *revision)?;
        revision.get_or_insert(at);
        let (value, modified) = found.map_or((None, 0), |(value, modified)| (Some(value), modified));
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (modified, value.clone()));
        Ok(value)
    }

    /// The object keys of the runs live processes hold, at the transaction's revision: what
    /// it lists as running and what it finds held are of one moment.
    pub(super) fn held(&self) -> Result<BTreeSet<String>, StateError> {
        // Object keys begin with an ASCII kind; U+00FF sorts after every one.
        let holds = &self.etcd.keys.holds;
        let mut revision = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        let (held, at) = self.etcd.range(holds, &format!("{holds}\u{ff}"), *revision)?;
        revision.get_or_insert(at);
        Ok(held.into_iter().map(|(key, _)| key[holds.len()..].to_owned()).collect())
    }

    /// The keys of the objects of `kind` whose run was started and not ended (see
    /// [`Keys::running`]), at this transaction's revision.
    pub(super) fn running(&self, kind: &str) -> Result<Vec<String>, StateError> {
        let running = &self.etcd.keys.running;
        let mut revision = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        let (found, at) = self.etcd.range(&format!("{running}{kind}\u{0}"), &format!("{running}{kind}\u{1}"), *revision)?;
        revision.get_or_insert(at);
        Ok(found.into_iter().map(|(key, _)| key[running.len()..].to_owned()).collect())
    }

    /// The least version a write in this transaction gives an object: after the revision it
    /// reads, which is after every write it sees. With the object's own key read (and so
    /// compared at the commit), no two writes of one object get one version.
    pub(super) fn next_version(&mut self) -> Result<u64, StateError> {
        if self.revision.get_mut().unwrap_or_else(|e| e.into_inner()).is_none() {
            self.read(self.etcd.keys.probe.clone())?;
        }
        let revision = self.revision.get_mut().unwrap_or_else(|e| e.into_inner()).unwrap_or(0);
        Ok(u64::try_from(revision).unwrap_or(0) + 1)
    }

    /// The value at `key`, as this transaction has it.
    pub(super) fn bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let key = self.etcd.keys.object(key);
        match self.writes.get(&key) {
            Some(written) => Ok(written.clone()),
            None => self.read(key),
        }
    }

    /// The objects from `start` to `end` (exclusive), which are those of `kind` (in
    /// `namespace`), by key, as this transaction has them.
    pub(super) fn range(&self, start: &str, end: &str, kind: &str, namespace: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        if self.writable {
            // The generation first: a change in the range after this revision fails the commit.
            self.read(self.etcd.keys.generation(kind, namespace))?;
        }
        let (start, end) = (self.etcd.keys.object(start), self.etcd.keys.object(end));
        let mut revision = self.revision.lock().unwrap_or_else(|e| e.into_inner());
        let (found, at) = self.etcd.range(&start, &end, *revision)?;
        revision.get_or_insert(at);
        drop(revision);
        let mut found: BTreeMap<String, Vec<u8>> = found.into_iter().collect();
        for (key, written) in self.writes.range(start..end) {
            match written {
                Some(value) => found.insert(key.clone(), value.clone()),
                None => found.remove(key),
            };
        }
        let objects = self.etcd.keys.objects.len();
        Ok(found.into_iter().map(|(key, value)| (key[objects..].to_owned(), value)).collect())
    }

    fn write(&mut self, key: String, value: Option<Vec<u8>>, kind: &str, namespace: &str) -> Result<(), StateError> {
        if !self.writable {
            return Err(self.error("write in a read transaction".into()));
        }
        self.writes.insert(key, value);
        self.touched.insert(self.etcd.keys.generation(kind, Some(namespace)));
        self.touched.insert(self.etcd.keys.generation(kind, None));
        Ok(())
    }

    /// Sets object `key` (of `kind` in `namespace`) to `value`.
    pub(super) fn put(&mut self, key: String, value: Vec<u8>, kind: &str, namespace: &str) -> Result<(), StateError> {
        let key = self.etcd.keys.object(&key);
        self.write(key, Some(value), kind, namespace)
    }

    /// Holds the run of object `key` under this process's lease (`true`), or releases it.
    pub(super) fn hold(&mut self, key: String, hold: bool) -> Result<(), StateError> {
        if !self.writable {
            return Err(self.error("write in a read transaction".into()));
        }
        self.holds.insert(key, hold);
        Ok(())
    }

    /// Removes object `key` (of `kind` in `namespace`); whether it was there.
    pub(super) fn remove(&mut self, key: String, kind: &str, namespace: &str) -> Result<bool, StateError> {
        let existed = self.bytes(&key)?.is_some();
        let key = self.etcd.keys.object(&key);
        self.write(key, None, kind, namespace)?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_urls_parse_and_bad_ones_are_named() {
        let options = parse_etcd_url("etcd://127.0.0.1:2379, [::1]:22379").unwrap();
        assert_eq!(options.endpoints(), ["http://127.0.0.1:2379", "http://[::1]:22379"]);
        assert_eq!(options.prefix, "coffer");
        let options = parse_etcd_url("etcd://127.0.0.1:2379/tenants/eu-1/").unwrap();
        assert_eq!((options.prefix.as_str(), options.name().as_str()), ("tenants/eu-1", "etcd://127.0.0.1:2379/tenants/eu-1"));
        let tls = EtcdOptions { tls: Some(EtcdTls::default()), ..options };
        assert_eq!(tls.endpoints(), ["https://127.0.0.1:2379"]);
        for bad in ["http://127.0.0.1:2379", "etcd://127.0.0.1", "etcd://a:1?x=y", "etcd://a:1/pre fix", "etcd://"] {
            let err = parse_etcd_url(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let err = parse_etcd_url("etcd://user:hunter2@a:1").unwrap_err();
        assert!(err.contains("credentials") && !err.contains("hunter2"), "{err}");
    }
}
