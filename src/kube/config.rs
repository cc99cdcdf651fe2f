//! Where the API server is and who holdup is there: the pod's own service account
//! (in-cluster), or a kubeconfig file (out of cluster: CI smoke checks, a laptop).
//!
//! The choice, as kubectl makes it: a target with `#context=` and a set `KUBECONFIG` mean
//! a kubeconfig; otherwise `KUBERNETES_SERVICE_HOST` means in-cluster; otherwise
//! `~/.kube/config`. A kubeconfig user may get its credentials from an exec plugin
//! ([`super::plugin`]), which runs only when a request needs them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use yaml_rust2::YamlLoader;

use super::plugin::{ClusterInfo, Plugin};
use super::resource::null_as_default;
use super::yaml::yaml_to_json;
use crate::redact::Secret;
use crate::tls::{self, Identity, Roots, Verify};
use crate::words::io_error_words;

/// Where a pod's service-account token, CA and namespace are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The variables that decide the connection, read once.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub kubeconfig: Option<String>,
    pub home: Option<PathBuf>,
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    pub service_account_dir: PathBuf,
}

impl Environment {
    pub fn from_process() -> Environment {
        // An empty variable counts as unset, as it does for kubectl.
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Environment {
            kubeconfig: var("KUBECONFIG"),
            home: var("HOME").map(PathBuf::from),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            service_account_dir: var("HOLDUP_SERVICE_ACCOUNT_DIR")
                .map_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR), PathBuf::from),
        }
    }
}

/// How holdup proves who it is, besides a client certificate (which lives in the TLS
/// configuration).
pub enum Credentials {
    /// None, or a client certificate.
    Anonymous,
    /// A bearer token given in a kubeconfig.
    Token(Secret),
    /// A bearer token read from this file anew for every request: bound service-account
    /// tokens are rotated by the kubelet while the pod runs.
    TokenFile(PathBuf),
    /// A token or client certificate from a kubeconfig's exec plugin.
    Plugin(Plugin),
}

/// Everything needed to talk to one API server.
pub struct Connection {
    pub server: Url,
    pub roots: Roots,
    pub verify: Verify,
    pub identity: Option<Identity>,
    pub credentials: Credentials,
    /// The namespace of targets that name none, and where it came from (for --dry-run).
    pub namespace: String,
    pub namespace_from: String,
    /// Whose credentials these are, for messages.
    pub who: String,
}

/// The connection for a target, with the kubeconfig context it chose, if any.
pub fn connection(environment: &Environment, context: Option<&str>) -> Result<Connection> {
    if let Some(list) = &environment.kubeconfig {
        let paths: Vec<PathBuf> = std::env::split_paths(list)
            .filter(|path| !path.as_os_str().is_empty())
            .collect();
        return from_kubeconfig(&paths, context);
    }
    if context.is_none() && environment.service_host.is_some() {
        return in_cluster(environment);
    }
    let home_config = environment
        .home
        .as_ref()
        .map(|home| home.join(".kube").join("config"));
    match home_config {
        Some(path) if path.exists() => from_kubeconfig(&[path], context),
        _ if context.is_some() => bail!(
            "#context needs a kubeconfig, and there is none (KUBECONFIG is not set, ~/.kube/config does not exist)"
        ),
        _ => bail!(
            "no Kubernetes API server to ask: not in a cluster (KUBERNETES_SERVICE_HOST is not set) \
             and no kubeconfig (KUBECONFIG is not set, ~/.kube/config does not exist)"
        ),
    }
}

/// The connection to the cluster the pod runs in, through its service account, whatever
/// kubeconfig is around: what holdup says about its own pod goes there.
pub fn in_cluster_connection(environment: &Environment) -> Result<Connection> {
    in_cluster(environment)
}

fn in_cluster(environment: &Environment) -> Result<Connection> {
    let host = environment.service_host.as_deref().unwrap_or_default();
    let port = environment
        .service_port
        .as_deref()
        .context("KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not")?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("KUBERNETES_SERVICE_PORT={port:?} is not a port number"))?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let server = Url::parse(&format!("https://{host}:{port}"))
        .with_context(|| format!("KUBERNETES_SERVICE_HOST={host:?} is not a host"))?;
    let dir = &environment.service_account_dir;
    let token = dir.join("token");
    let file = dir.join("namespace");
    let namespace = std::fs::read_to_string(&file)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|namespace| !namespace.is_empty());
    let namespace_from = match namespace {
        Some(_) => format!("the service account's {}", file.display()),
        None => format!("the default: there is no {}", file.display()),
    };
    Ok(Connection {
        server,
        roots: Roots::File(dir.join("ca.crt")),
        verify: Verify::Full,
        identity: None,
        who: format!("the service-account token {}", token.display()),
        credentials: Credentials::TokenFile(token),
        namespace: namespace.unwrap_or_else(|| "default".to_string()),
        namespace_from,
    })
}

/// A kubeconfig, as much of it as holdup uses. Field names are kubeconfig's own.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Kubeconfig {
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<Context>>,
    current_context: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    item: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    extensions: Vec<Extension>,
}

/// `{name: client.authentication.k8s.io/exec, extension: {...}}`: what a cluster tells
/// exec plugins that ask for cluster information.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Extension {
    name: String,
    extension: Value,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    username: Option<String>,
    exec: Option<Value>,
    auth_provider: Option<Value>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and keys are never shown.
        f.write_str("User(redacted)")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Context {
    cluster: String,
    user: String,
    namespace: Option<String>,
}

/// One entry of the merged kubeconfig and the directory its relative paths start from.
struct Found<'a, T> {
    item: &'a T,
    dir: &'a Path,
    file: &'a Path,
}

fn from_kubeconfig(paths: &[PathBuf], context: Option<&str>) -> Result<Connection> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => files.push((path.clone(), parse_kubeconfig(&text, path)?)),
            // kubectl skips files of KUBECONFIG that do not exist.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && paths.len() > 1 => {}
            Err(error) => bail!(
                "cannot read kubeconfig {}: {}",
                path.display(),
                io_error_words(&error)
            ),
        }
    }
    let shown = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    if files.is_empty() {
        bail!("none of the kubeconfig files {shown} exists");
    }
    // As kubectl merges several files: the first to define a name wins.
    let context_name = match context {
        Some(name) => name.to_string(),
        None => files
            .iter()
            .find_map(|(_, config)| config.current_context.clone().filter(|c| !c.is_empty()))
            .with_context(|| {
                format!(
                    "kubeconfig {shown} has no current-context; choose one with #context=NAME ({})",
                    names(files.iter().flat_map(|(_, c)| &c.contexts))
                )
            })?,
    };
    let chosen = first(&files, |config| &config.contexts, &context_name).with_context(|| {
        format!(
            "kubeconfig {shown} has no context {context_name:?} ({})",
            names(files.iter().flat_map(|(_, c)| &c.contexts))
        )
    })?;
    let cluster = first(&files, |config| &config.clusters, &chosen.item.cluster).with_context(
        || {
            format!(
                "context {context_name:?} of kubeconfig {} names cluster {:?}, which is not defined",
                chosen.file.display(),
                chosen.item.cluster
            )
        },
    )?;
    let user = if chosen.item.user.is_empty() {
        None
    } else {
        Some(
            first(&files, |config| &config.users, &chosen.item.user).with_context(|| {
                format!(
                    "context {context_name:?} of kubeconfig {} names user {:?}, which is not defined",
                    chosen.file.display(),
                    chosen.item.user
                )
            })?,
        )
    };

    let where_cluster = format!(
        "cluster {:?} of kubeconfig {}",
        chosen.item.cluster,
        cluster.file.display()
    );
    let server = Url::parse(&cluster.item.server)
        .ok()
        .filter(|url| url.scheme() == "https" && url.host_str().is_some())
        .with_context(|| {
            format!(
                "{where_cluster}: server {:?} is not an https:// URL",
                cluster.item.server
            )
        })?;
    if cluster.item.tls_server_name.is_some() {
        bail!("{where_cluster}: tls-server-name is not supported by holdup");
    }
    if cluster.item.proxy_url.is_some() {
        bail!(
            "{where_cluster}: proxy-url is not supported: holdup talks to the API server directly"
        );
    }
    let roots = match (
        &cluster.item.certificate_authority_data,
        &cluster.item.certificate_authority,
    ) {
        (Some(data), _) => Roots::Pem {
            pem: decode_base64(data)
                .with_context(|| format!("{where_cluster}: certificate-authority-data"))?,
            from: format!("certificate-authority-data of {where_cluster}"),
        },
        (None, Some(path)) => Roots::File(relative_to(cluster.dir, path)),
        (None, None) => Roots::BuiltIn,
    };
    let verify = if cluster.item.insecure_skip_tls_verify {
        Verify::Nothing
    } else {
        Verify::Full
    };

    let namespace = chosen.item.namespace.clone().filter(|n| !n.is_empty());
    let (credentials, identity, who) = match user {
        None => (
            Credentials::Anonymous,
            None,
            "anonymous requests".to_string(),
        ),
        Some(user) => {
            let extension = cluster
                .item
                .extensions
                .iter()
                .find(|extension| extension.name == "client.authentication.k8s.io/exec");
            let cluster_info = ClusterInfo::new(
                &cluster.item.server,
                &roots,
                cluster.item.insecure_skip_tls_verify,
                extension.map(|extension| extension.extension.clone()),
            );
            user_credentials(&chosen.item.user, &user, cluster_info)?
        }
    };
    Ok(Connection {
        server,
        roots,
        verify,
        identity,
        credentials,
        namespace: namespace.clone().unwrap_or_else(|| "default".to_string()),
        namespace_from: match namespace {
            Some(_) => format!("context {context_name:?} of {}", chosen.file.display()),
            None => format!("the default: context {context_name:?} names none"),
        },
        who,
    })
}

fn user_credentials(
    name: &str,
    user: &Found<'_, User>,
    cluster: ClusterInfo,
) -> Result<(Credentials, Option<Identity>, String)> {
    let where_user = format!("user {name:?} of kubeconfig {}", user.file.display());
    let item = user.item;
    if item.auth_provider.is_some() {
        bail!(
            "{where_user} uses an auth-provider, which holdup does not support; use an exec plugin (gke-gcloud-auth-plugin, kubelogin), a token or a client certificate"
        );
    }
    if item.username.is_some() {
        bail!(
            "{where_user} uses a username and password, which Kubernetes no longer accepts; give it a token or a client certificate"
        );
    }
    let identity = match (
        pem_of(
            &item.client_certificate_data,
            &item.client_certificate,
            user.dir,
        ),
        pem_of(&item.client_key_data, &item.client_key, user.dir),
    ) {
        (None, None) => None,
        (Some(certificate), Some(key)) => {
            let certificate =
                certificate.with_context(|| format!("{where_user}: client certificate"))?;
            let key = key.with_context(|| format!("{where_user}: client key"))?;
            Some(Identity {
                chain: tls::parse_certificates(
                    &certificate,
                    &format!("the client certificate of {where_user}"),
                )?,
                key: tls::parse_private_key(&key, &format!("the client key of {where_user}"))?,
            })
        }
        (Some(_), None) => bail!("{where_user} has a client certificate but no client key"),
        (None, Some(_)) => bail!("{where_user} has a client key but no client certificate"),
    };
    let credentials = match (&item.token, &item.token_file, &item.exec) {
        (Some(token), _, _) if !token.trim().is_empty() => {
            Credentials::Token(Secret::new(token.trim()))
        }
        (_, Some(path), _) => Credentials::TokenFile(relative_to(user.dir, path)),
        // As in kubectl, a token given in the kubeconfig wins over the plugin.
        (_, _, Some(exec)) => Credentials::Plugin(Plugin::from_kubeconfig(
            exec,
            &where_user,
            user.dir,
            cluster,
        )?),
        _ => Credentials::Anonymous,
    };
    let who = match (&credentials, &identity) {
        (Credentials::Anonymous, Some(_)) => format!("the client certificate of {where_user}"),
        (Credentials::Anonymous, None) => format!("{where_user} (which has no credentials)"),
        (Credentials::Plugin(plugin), _) => plugin.who(),
        _ => format!("the token of {where_user}"),
    };
    Ok((credentials, identity, who))
}

/// PEM from `*-data` (base64) or from a file, if either is given.
fn pem_of(data: &Option<String>, path: &Option<String>, dir: &Path) -> Option<Result<Vec<u8>>> {
    match (data, path) {
        (Some(data), _) => Some(decode_base64(data).context("the -data field")),
        (None, Some(path)) => {
            let path = relative_to(dir, path);
            Some(std::fs::read(&path).map_err(|error| {
                anyhow!("cannot read {}: {}", path.display(), io_error_words(&error))
            }))
        }
        (None, None) => None,
    }
}

fn decode_base64(data: &str) -> Result<Vec<u8>> {
    let compact: String = data.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|error| anyhow!("not base64: {error}"))
}

/// Relative paths in a kubeconfig start from the file's own directory.
fn relative_to(dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

fn first<'a, T>(
    files: &'a [(PathBuf, Kubeconfig)],
    list: impl Fn(&'a Kubeconfig) -> &'a Vec<Named<T>>,
    name: &str,
) -> Option<Found<'a, T>> {
    files.iter().find_map(|(file, config)| {
        list(config)
            .iter()
            .find(|named| named.name == name)
            .map(|named| Found {
                item: &named.item,
                dir: file.parent().unwrap_or(Path::new(".")),
                file,
            })
    })
}

fn names<'a, T: 'a>(named: impl Iterator<Item = &'a Named<T>>) -> String {
    let names: Vec<&str> = named.map(|named| named.name.as_str()).collect();
    if names.is_empty() {
        "it defines no context".to_string()
    } else {
        format!("contexts: {}", names.join(", "))
    }
}

fn parse_kubeconfig(text: &str, path: &Path) -> Result<Kubeconfig> {
    let documents = YamlLoader::load_from_str(text)
        .map_err(|error| anyhow!("kubeconfig {} is not valid YAML: {error}", path.display()))?;
    let Some(document) = documents.into_iter().next() else {
        return Ok(Kubeconfig::default());
    };
    Kubeconfig::deserialize(yaml_to_json(document))
        .map_err(|error| anyhow!("kubeconfig {} is not a kubeconfig: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn in_cluster_reads_the_service_account_dir() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "namespace", "shop\n");
        let environment = Environment {
            service_host: Some("fd00::1".into()),
            service_port: Some("443".into()),
            service_account_dir: dir.path().to_path_buf(),
            ..Environment::default()
        };
        let connection = connection(&environment, None).unwrap();
        assert_eq!(connection.server.as_str(), "https://[fd00::1]/");
        assert_eq!(connection.namespace, "shop");
        assert_eq!(connection.roots, Roots::File(dir.path().join("ca.crt")));
        assert!(
            matches!(connection.credentials, Credentials::TokenFile(ref p) if p == &dir.path().join("token"))
        );

        std::fs::remove_file(dir.path().join("namespace")).unwrap();
        assert_eq!(connection_namespace(&environment), "default");
        let bad_port = Environment {
            service_port: Some("https".into()),
            ..environment
        };
        let message = format!("{:#}", super::connection(&bad_port, None).err().unwrap());
        assert!(
            message.contains("KUBERNETES_SERVICE_PORT=\"https\" is not a port number"),
            "{message}"
        );
    }

    fn connection_namespace(environment: &Environment) -> String {
        connection(environment, None).unwrap().namespace
    }

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: certs/ca.pem
- name: prod
  cluster:
    server: https://k8s.example.org
    insecure-skip-tls-verify: true
users:
- name: dev
  user:
    token: s3cret-token
- name: ci
  user:
    tokenFile: /run/ci/token
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
contexts:
- name: dev
  context: {cluster: dev, user: dev, namespace: shop}
- name: ci
  context: {cluster: prod, user: ci}
- name: eks
  context: {cluster: prod, user: eks}
- name: broken
  context: {cluster: nowhere, user: dev}
"#;

    #[test]
    fn kubeconfig_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "config", KUBECONFIG);
        let environment = Environment {
            kubeconfig: Some(path.display().to_string()),
            // In-cluster variables lose to an explicit KUBECONFIG.
            service_host: Some("10.0.0.1".into()),
            service_port: Some("443".into()),
            ..Environment::default()
        };
        let current = connection(&environment, None).unwrap();
        assert_eq!(current.server.as_str(), "https://127.0.0.1:6443/");
        assert_eq!(current.namespace, "shop");
        assert_eq!(current.roots, Roots::File(dir.path().join("certs/ca.pem")));
        assert!(
            matches!(current.credentials, Credentials::Token(ref t) if t.expose() == "s3cret-token")
        );
        assert!(current.who.contains("the token of user \"dev\""));
        assert!(!current.who.contains("s3cret"));

        let ci = connection(&environment, Some("ci")).unwrap();
        assert_eq!(ci.namespace, "default");
        assert_eq!(ci.verify, Verify::Nothing);
        assert_eq!(ci.roots, Roots::BuiltIn);
        assert!(
            matches!(ci.credentials, Credentials::TokenFile(ref p) if p == Path::new("/run/ci/token"))
        );

        let eks = connection(&environment, Some("eks")).unwrap();
        assert!(matches!(eks.credentials, Credentials::Plugin(_)));
        assert_eq!(
            eks.who,
            format!(
                "the credentials of the plugin \"aws\" of user \"eks\" of kubeconfig {}",
                path.display()
            )
        );

        for (context, expected) in [
            ("broken", "names cluster \"nowhere\", which is not defined"),
            (
                "nope",
                "has no context \"nope\" (contexts: dev, ci, eks, broken)",
            ),
        ] {
            let message = format!(
                "{:#}",
                connection(&environment, Some(context)).err().unwrap()
            );
            assert!(message.contains(expected), "{context}: {message}");
            assert!(!message.contains("s3cret"), "{message}");
        }
    }

    #[test]
    fn kubeconfig_files_merge_and_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(
            dir.path(),
            "a",
            "contexts:\n- name: x\n  context: {cluster: c, user: u}\n",
        );
        let second = write(
            dir.path(),
            "b",
            "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h:1'}\nusers:\n- name: u\n  user: {}\n",
        );
        let list = std::env::join_paths([&first, &dir.path().join("missing"), &second]).unwrap();
        let environment = Environment {
            kubeconfig: Some(list.to_string_lossy().into_owned()),
            ..Environment::default()
        };
        let merged = connection(&environment, None).unwrap();
        assert_eq!(merged.server.as_str(), "https://h:1/");

        let bad = write(dir.path(), "bad", "clusters: [\n");
        let environment = Environment {
            kubeconfig: Some(bad.display().to_string()),
            ..Environment::default()
        };
        let message = format!("{:#}", connection(&environment, None).err().unwrap());
        assert!(message.contains("is not valid YAML"), "{message}");

        let nothing = Environment::default();
        let message = format!("{:#}", connection(&nothing, None).err().unwrap());
        assert!(message.contains("not in a cluster"), "{message}");
    }

    /// Property tests: kubeconfig files, whole and mangled, give a connection or an error
    /// that names the file; never a panic.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// KUBECONFIG with lines dropped, doubled, cut or given other values.
        fn mangled() -> impl Strategy<Value = String> {
            let lines: Vec<&'static str> = KUBECONFIG.lines().collect();
            let count = lines.len();
            let edit = prop_oneof![
                Just(None),
                prop::sample::select(vec![
                    "",
                    "-",
                    ":",
                    "- name:",
                    "  cluster:",
                    "    server: ",
                    "    server: http://x",
                    "    server: https://[::1",
                    "    server: https://h:0",
                    "server: ~",
                    "    token: ",
                    "    certificate-authority-data: !!binary zz",
                    "  user: []",
                    "  context: {cluster: dev, user: dev, namespace: \"\"}",
                    "current-context: ",
                    "current-context: nowhere",
                    "current-context: [a]",
                    "contexts: 3",
                    "clusters: {}",
                    "users: ~",
                    "&a [*a]",
                    "*x",
                    "{",
                    "[",
                    "\"",
                    "'",
                    "\t",
                    "apiVersion: v2",
                    "kind: Pod",
                    "    insecure-skip-tls-verify: maybe",
                    "    client-key-data: Zm9v",
                    "    exec: {command: ''}",
                    "---",
                    "...",
                ])
                .prop_map(|line| Some(line.to_string())),
            ];
            prop::collection::vec((0..count, edit), 0..8).prop_map(move |edits| {
                let mut mangled: Vec<String> = lines.iter().map(ToString::to_string).collect();
                for (at, edit) in edits {
                    let at = at.min(mangled.len().saturating_sub(1));
                    match edit {
                        None if !mangled.is_empty() => {
                            mangled.remove(at);
                        }
                        None => {}
                        Some(line) => mangled.insert(at, line),
                    }
                }
                mangled.join("\n")
            })
        }

        fn read(text: &str, context: Option<&str>) -> Result<(), TestCaseError> {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "config", text);
            if let Err(error) = from_kubeconfig(&[path], context) {
                let message = format!("{error:#}");
                prop_assert!(!message.is_empty());
                prop_assert!(!message.contains("s3cret"), "{message}");
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn any_text(text in any::<String>()) {
                read(&text, None)?;
            }

            #[test]
            fn mangled_kubeconfigs(
                text in mangled(),
                context in prop::option::of(prop::sample::select(vec!["dev", "ci", "eks", "broken", "none"])),
            ) {
                read(&text, context)?;
            }
        }
    }
}
