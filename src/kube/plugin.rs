//! Kubeconfig `exec` credential plugins, as kubectl runs them (`aws eks get-token`,
//! `gke-gcloud-auth-plugin`, `kubelogin`): the command with its arguments and environment,
//! `KUBERNETES_EXEC_INFO` describing the request, no terminal; its `ExecCredential`
//! (`client.authentication.k8s.io/v1` or `v1beta1`) gives a token or a client certificate,
//! kept in memory until its `expirationTimestamp` and fetched again after it, or after the
//! API server refused it.
//!
//! A plugin runs inside an attempt, so the scheduler's attempt timeout bounds it: the child
//! is killed when the attempt is dropped. A plugin that is missing, fails or answers
//! nonsense does not mend by waiting (exit 3), and is said in words with its stderr.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::resource::null_as_default;
use crate::attempt::Stage;
use crate::redact::Secret;
use crate::tls::Roots;
use crate::words::io_error_words;

/// The ExecCredential versions holdup speaks, as kubectl does today.
const VERSIONS: &[&str] = &[
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// Most of a plugin's stdout read (an ExecCredential with a certificate is a few KiB), and
/// of its stderr shown.
const STDOUT_LIMIT: usize = 1 << 20;
const STDERR_SHOWN: usize = 600;

/// A kubeconfig user's `exec` block, ready to run.
pub struct Plugin {
    api_version: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    install_hint: Option<String>,
    /// `KUBERNETES_EXEC_INFO`, as the plugin reads it.
    exec_info: String,
    /// `user "eks" of kubeconfig /home/ci/.kube/config`, for messages.
    owner: String,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    issued: Option<Arc<Issued>>,
    runs: u64,
}

/// What one run of the plugin gave.
pub struct Issued {
    pub credential: Credential,
    expires: Option<SystemTime>,
    /// Which run this is, so that a client built for its certificate is built once.
    pub run: u64,
}

pub enum Credential {
    Token(Secret),
    /// A client certificate (PEM) and its key (PEM, secret).
    Certificate {
        chain: Vec<u8>,
        key: Secret,
    },
}

/// A kubeconfig `exec` block. Field names are kubeconfig's own.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    api_version: String,
    command: String,
    #[serde(deserialize_with = "null_as_default")]
    args: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    env: Vec<EnvVar>,
    install_hint: Option<String>,
    provide_cluster_info: bool,
    interactive_mode: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct EnvVar {
    name: String,
    value: String,
}

/// The cluster as a plugin with `provideClusterInfo` is told of it.
pub struct ClusterInfo {
    pub server: String,
    pub certificate_authority_data: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    /// The cluster's `client.authentication.k8s.io/exec` extension, if any.
    pub config: Option<Value>,
}

impl ClusterInfo {
    /// `config` is the cluster's `client.authentication.k8s.io/exec` extension.
    pub fn new(server: &str, roots: &Roots, insecure: bool, config: Option<Value>) -> ClusterInfo {
        ClusterInfo {
            server: server.to_string(),
            certificate_authority_data: match roots {
                Roots::Pem { pem, .. } => Some(pem.clone()),
                Roots::File(path) => std::fs::read(path).ok(),
                Roots::BuiltIn => None,
            },
            insecure_skip_tls_verify: insecure,
            config,
        }
    }
}

impl Plugin {
    /// The plugin of a kubeconfig user's `exec` block; `dir` is the kubeconfig's directory,
    /// which a relative command with a `/` starts from (as kubectl resolves it).
    pub fn from_kubeconfig(
        exec: &Value,
        owner: &str,
        dir: &Path,
        cluster: ClusterInfo,
    ) -> Result<Plugin> {
        let spec = Spec::deserialize(exec).map_err(|error| {
            anyhow!("{owner}: its exec block is not one kubectl reads: {error}")
        })?;
        if spec.command.is_empty() {
            bail!("{owner}: its exec block names no command");
        }
        if !VERSIONS.contains(&spec.api_version.as_str()) {
            bail!(
                "{owner}: its exec plugin speaks apiVersion {:?}, which holdup does not (expected {})",
                spec.api_version,
                VERSIONS.join(" or ")
            );
        }
        match (
            spec.interactive_mode.as_deref(),
            spec.api_version.ends_with("/v1"),
        ) {
            (None, true) => bail!(
                "{owner}: interactiveMode must be given for client.authentication.k8s.io/v1 exec plugins (Never or IfAvailable), as kubectl requires"
            ),
            (None | Some("Never" | "IfAvailable"), _) => {}
            (Some("Always"), _) => bail!(
                "{owner}: its exec plugin wants a terminal (interactiveMode: Always), and holdup never has one; use a plugin or mode that needs no prompt"
            ),
            (Some(other), _) => {
                bail!("{owner}: interactiveMode {other:?} is not one of Never, IfAvailable, Always")
            }
        }
        let command = if spec.command.contains('/') && !Path::new(&spec.command).is_absolute() {
            // As filepath.Join cleans it: `./bin/x` is `DIR/bin/x`.
            let relative: PathBuf = Path::new(&spec.command)
                .components()
                .filter(|part| *part != Component::CurDir)
                .collect();
            dir.join(relative).display().to_string()
        } else {
            spec.command.clone()
        };
        let mut info = json!({
            "kind": "ExecCredential",
            "apiVersion": spec.api_version,
            "spec": {"interactive": false},
        });
        if spec.provide_cluster_info {
            info["spec"]["cluster"] = cluster_json(&cluster);
        }
        Ok(Plugin {
            api_version: spec.api_version,
            command,
            args: spec.args,
            env: spec
                .env
                .into_iter()
                .map(|var| (var.name, var.value))
                .collect(),
            install_hint: spec.install_hint.filter(|hint| !hint.trim().is_empty()),
            exec_info: info.to_string(),
            owner: owner.to_string(),
            cache: Mutex::default(),
        })
    }

    /// `the credential plugin "aws" of user "eks" of kubeconfig …`, for messages.
    pub fn who(&self) -> String {
        format!(
            "the credentials of the plugin {:?} of {}",
            self.command, self.owner
        )
    }

    /// The credential, from memory while it has not expired, else from a new run.
    pub async fn credential(&self, stage: &Stage) -> Result<Arc<Issued>> {
        let now = SystemTime::now();
        let (cached, runs) = self
            .cache
            .lock()
            .map(|cache| (cache.issued.clone(), cache.runs))
            .unwrap_or_default();
        if let Some(issued) = cached.filter(|issued| !issued.expired(now)) {
            return Ok(issued);
        }
        stage.set(format!(
            "running the credential plugin {:?} of {}",
            self.command, self.owner
        ));
        let issued = Arc::new(self.run(runs + 1).await?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.issued = Some(issued.clone());
            cache.runs = issued.run;
        }
        Ok(issued)
    }

    /// The API server refused the credential: the next request runs the plugin again.
    pub fn forget(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.issued = None;
        }
    }

    async fn run(&self, run: u64) -> Result<Issued> {
        let mut command = tokio::process::Command::new(&self.command);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .env("KUBERNETES_EXEC_INFO", &self.exec_info)
            // Never interactive: nothing to read a password from.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The attempt timeout drops this future; the plugin goes with it.
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| {
            let hint = self
                .install_hint
                .as_deref()
                .map(|hint| format!(" ({})", one_line(hint)))
                .unwrap_or_default();
            if error.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "the credential plugin {:?} of {} was not found{hint}",
                    self.command,
                    self.owner
                )
            } else {
                anyhow!(
                    "cannot run the credential plugin {:?} of {}: {}{hint}",
                    self.command,
                    self.owner,
                    io_error_words(&error)
                )
            }
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (stdout, stderr, status) = tokio::join!(
            read_capped(stdout, STDOUT_LIMIT),
            read_capped(stderr, STDOUT_LIMIT),
            child.wait()
        );
        let status = status.map_err(|error| {
            anyhow!(
                "the credential plugin {:?} of {} could not be waited for: {}",
                self.command,
                self.owner,
                io_error_words(&error)
            )
        })?;
        if !status.success() {
            let how = match status.code() {
                Some(code) => format!("exit code {code}"),
                None => "a signal".to_string(),
            };
            let said = shown_stderr(&stderr);
            bail!(
                "the credential plugin {:?} of {} failed ({how}){}",
                self.command,
                self.owner,
                if said.is_empty() {
                    ", saying nothing".to_string()
                } else {
                    format!(": {said}")
                }
            );
        }
        let (credential, expires) =
            parse_credential(&stdout, &self.api_version).map_err(|why| {
                anyhow!(
                    "the credential plugin {:?} of {} {why}",
                    self.command,
                    self.owner
                )
            })?;
        Ok(Issued {
            credential,
            expires,
            run,
        })
    }
}

impl Issued {
    fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

fn cluster_json(cluster: &ClusterInfo) -> Value {
    use base64::Engine as _;
    let mut info = json!({"server": cluster.server});
    if let Some(data) = &cluster.certificate_authority_data {
        info["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    if cluster.insecure_skip_tls_verify {
        info["insecure-skip-tls-verify"] = json!(true);
    }
    if let Some(config) = &cluster.config {
        info["config"] = config.clone();
    }
    info
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>, limit: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(stream) = stream {
        // Past the limit the pipe is closed: the plugin gets EPIPE, not a full pipe to block on.
        let _ = stream.take(limit as u64).read_to_end(&mut bytes).await;
    }
    bytes
}

/// The end of a plugin's stderr (where the error is), on one line, at most a few hundred
/// characters.
fn shown_stderr(stderr: &[u8]) -> String {
    let text = one_line(&String::from_utf8_lossy(stderr));
    let count = text.chars().count();
    if count <= STDERR_SHOWN {
        return text;
    }
    let tail: String = text.chars().skip(count - STDERR_SHOWN).collect();
    format!("…{tail}")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The credential of an `ExecCredential` a plugin printed, and when it expires.
fn parse_credential(
    stdout: &[u8],
    api_version: &str,
) -> Result<(Credential, Option<SystemTime>), String> {
    #[derive(Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct ExecCredential {
        api_version: String,
        kind: String,
        status: Option<Status>,
    }
    #[derive(Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Status {
        expiration_timestamp: Option<String>,
        token: Option<String>,
        client_certificate_data: Option<String>,
        client_key_data: Option<String>,
    }
    let answer: ExecCredential = serde_json::from_slice(stdout).map_err(|error| {
        format!("printed something that is not an ExecCredential (JSON): {error}")
    })?;
    if answer.kind != "ExecCredential" {
        return Err(format!(
            "printed a {:?}, not an ExecCredential",
            answer.kind
        ));
    }
    if answer.api_version != api_version {
        return Err(format!(
            "answered in apiVersion {:?}, but the kubeconfig asks for {api_version:?}",
            answer.api_version
        ));
    }
    let status = answer
        .status
        .ok_or("printed an ExecCredential without a status")?;
    let expires = status
        .expiration_timestamp
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(|text| {
            humantime::parse_rfc3339_weak(text).map_err(|_| {
                format!("printed an expirationTimestamp that is not an RFC 3339 time: {text:?}")
            })
        })
        .transpose()?;
    let nonempty = |field: Option<String>| field.filter(|value| !value.is_empty());
    let credential = match (
        nonempty(status.token),
        nonempty(status.client_certificate_data),
        nonempty(status.client_key_data),
    ) {
        (Some(token), _, _) => Credential::Token(Secret::new(token)),
        (None, Some(chain), Some(key)) => Credential::Certificate {
            chain: chain.into_bytes(),
            key: Secret::new(key),
        },
        (None, Some(_), None) => {
            return Err("gave a clientCertificateData without its clientKeyData".into());
        }
        (None, None, Some(_)) => {
            return Err("gave a clientKeyData without its clientCertificateData".into());
        }
        (None, None, None) => {
            return Err("gave neither a token nor a client certificate".into());
        }
    };
    Ok((credential, expires))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const V1: &str = "client.authentication.k8s.io/v1";

    fn cluster() -> ClusterInfo {
        ClusterInfo {
            server: "https://k8s.example:6443".into(),
            certificate_authority_data: Some(b"PEM".to_vec()),
            insecure_skip_tls_verify: false,
            config: None,
        }
    }

    fn plugin(exec: Value) -> Result<Plugin> {
        Plugin::from_kubeconfig(&exec, "user \"ci\"", Path::new("/conf"), cluster())
    }

    #[test]
    fn exec_blocks_kubectl_accepts_and_refuses() {
        let eks = plugin(json!({"apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws", "args": ["eks", "get-token", "--cluster-name", "prod"],
            "env": [{"name": "AWS_PROFILE", "value": "ci"}], "provideClusterInfo": true}))
        .unwrap();
        assert_eq!(eks.args, ["eks", "get-token", "--cluster-name", "prod"]);
        assert_eq!(eks.env, [("AWS_PROFILE".to_string(), "ci".to_string())]);
        let info: Value = serde_json::from_str(&eks.exec_info).unwrap();
        assert_eq!(
            info,
            json!({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                   "spec": {"interactive": false, "cluster": {
                       "server": "https://k8s.example:6443", "certificate-authority-data": "UEVN"}}})
        );
        let relative = plugin(json!({"apiVersion": V1, "command": "./bin/get-token",
            "interactiveMode": "Never", "env": null, "args": null}))
        .unwrap();
        assert_eq!(relative.command, "/conf/bin/get-token");
        assert_eq!(
            relative.exec_info,
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#
        );

        let cases = [
            (
                json!({"apiVersion": V1, "interactiveMode": "Never"}),
                "names no command",
            ),
            (
                json!({"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}),
                "speaks apiVersion \"client.authentication.k8s.io/v1alpha1\", which holdup does not",
            ),
            (
                json!({"apiVersion": V1, "command": "x"}),
                "interactiveMode must be given",
            ),
            (
                json!({"apiVersion": V1, "command": "x", "interactiveMode": "Always"}),
                "wants a terminal",
            ),
            (
                json!({"apiVersion": V1, "command": ["x"]}),
                "not one kubectl reads",
            ),
        ];
        for (exec, expected) in cases {
            let message = format!("{:#}", plugin(exec.clone()).err().unwrap());
            assert!(message.contains(expected), "{exec}: {message}");
            assert!(message.starts_with("user \"ci\": "), "{message}");
        }
    }

    #[test]
    fn exec_credentials_as_plugins_print_them() {
        let token = br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",
            "spec":{"interactive":false},
            "status":{"expirationTimestamp":"2030-01-02T03:04:05Z","token":"k8s-aws-v1.abc"}}"#;
        let (credential, expires) = parse_credential(token, V1).unwrap();
        assert!(matches!(credential, Credential::Token(ref t) if t.expose() == "k8s-aws-v1.abc"));
        assert_eq!(
            expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_553_445))
        );
        let certificate =
            br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1",
            "status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}}"#;
        let (credential, expires) = parse_credential(certificate, V1).unwrap();
        assert!(
            matches!(credential, Credential::Certificate { ref chain, .. } if chain == b"CERT")
        );
        assert_eq!(expires, None);

        let cases: [(&[u8], &str); 6] = [
            (b"Unable to locate credentials", "not an ExecCredential (JSON)"),
            (br#"{"kind":"Status","apiVersion":"v1"}"#, "printed a \"Status\""),
            (
                br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"t"}}"#,
                "answered in apiVersion \"client.authentication.k8s.io/v1beta1\", but the kubeconfig asks for \"client.authentication.k8s.io/v1\"",
            ),
            (
                br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}"#,
                "without a status",
            ),
            (
                br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientKeyData":"KEY"}}"#,
                "without its clientCertificateData",
            ),
            (
                br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"tomorrow"}}"#,
                "not an RFC 3339 time: \"tomorrow\"",
            ),
        ];
        for (stdout, expected) in cases {
            let message = parse_credential(stdout, V1).err().unwrap();
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn stderr_is_shown_on_one_line_and_capped_at_its_end() {
        assert_eq!(
            shown_stderr(b"\nAn error occurred (ExpiredToken)\n  when calling GetCallerIdentity\n"),
            "An error occurred (ExpiredToken) when calling GetCallerIdentity"
        );
        let long = format!("{}the end", "x".repeat(5000));
        let shown = shown_stderr(long.as_bytes());
        assert!(
            shown.starts_with('…') && shown.ends_with("the end"),
            "{shown}"
        );
        assert_eq!(shown.chars().count(), STDERR_SHOWN + 1);
    }

    #[test]
    fn an_issued_credential_expires_at_its_timestamp() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let issued = Issued {
            credential: Credential::Token(Secret::new("t")),
            expires: Some(at),
            run: 1,
        };
        assert!(!issued.expired(at - Duration::from_secs(1)));
        assert!(issued.expired(at));
        let forever = Issued {
            expires: None,
            ..issued
        };
        assert!(!forever.expired(at + Duration::from_secs(1 << 30)));
    }
}
