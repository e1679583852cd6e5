//! An upstream behind an HTTP proxy: the adapter reaches it through the proxy's `CONNECT` tunnel,
//! with the proxy's credentials, and never around a proxy that is down or refuses. Once with a
//! minimal tunnel written here (to see the exact `CONNECT` head), once with Debian's tinyproxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tollgate_providers::{Provider, ProviderError, ProviderKind, Proxy};
use tollgate_testkit::{Answer, Reply, Upstream};

use crate::cases::{UPSTREAM_MODEL, provider, request};

/// A forward proxy that only tunnels: it reads a `CONNECT` request's head, keeps it, connects
/// to the target and copies bytes both ways, as squid does for `CONNECT`.
struct TunnelProxy {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
}

impl TunnelProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(tunnel(client, seen.clone()));
            }
        });
        Self { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn tunnel(client: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut client = BufReader::new(client);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    heads.lock().unwrap().push(head);
    let Some(target) = target else {
        let _ = client
            .get_mut()
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let mut upstream = TcpStream::connect(target).await.unwrap();
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::test]
async fn an_upstream_behind_a_proxy_is_reached_through_its_tunnel_with_its_credentials() {
    let upstream = Upstream::replying(Reply::json(&tollgate_testkit::openai::chat(
        &Answer::hello(UPSTREAM_MODEL),
    )))
    .await;
    let proxy = TunnelProxy::start().await;
    let adapter = provider(ProviderKind::OpenAi, &upstream.root_url(), |settings| {
        settings.proxy = Proxy::Url(format!("http://ops:pr0xy@{}", proxy.addr));
    });
    let answer = adapter.chat(&request(false), UPSTREAM_MODEL).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["object"], "chat.completion", "{doc}");
    assert_eq!(upstream.hits(), 1);
    let heads = proxy.heads();
    assert_eq!(heads.len(), 1, "one tunnel, then pooled: {heads:?}");
    let head = &heads[0];
    assert!(
        head.starts_with(&format!("CONNECT {} HTTP/1.1\r\n", upstream.addr())),
        "{head}"
    );
    let credentials = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim())
    });
    // base64("ops:pr0xy")
    assert_eq!(credentials, Some("Basic b3BzOnByMHh5"), "{head}");
    adapter.chat(&request(false), UPSTREAM_MODEL).await.unwrap();
    assert_eq!(
        proxy.heads().len(),
        1,
        "the tunnel is pooled like a connection"
    );
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_connect_error_and_never_bypassed() {
    let upstream = Upstream::replying(Reply::json(&tollgate_testkit::openai::chat(
        &Answer::hello(UPSTREAM_MODEL),
    )))
    .await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let adapter = provider(ProviderKind::OpenAi, &upstream.root_url(), |settings| {
        settings.proxy = Proxy::Url(format!("http://{closed}"));
    });
    let err = adapter
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Connect(_)), "{err:?}");
    assert!(err.retryable());
    assert_eq!(
        upstream.hits(),
        0,
        "the upstream was reached around the proxy"
    );
}

/// Debian's tinyproxy in the foreground, Basic auth on, `CONNECT` allowed to `port` only.
/// `None` when it is not installed, which only a run outside CI may skip: `.ci/run` installs it.
struct Tinyproxy {
    child: std::process::Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Tinyproxy {
    async fn start(connect_port: u16) -> Option<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("tollgate-tinyproxy-{}", addr.port()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("tinyproxy.log");
        let config = dir.join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
                 MaxClients 10\nAllow 127.0.0.1\nConnectPort {connect_port}\nBasicAuth ops pr0xy\n",
                addr.port(),
                log.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run tinyproxy: apt-get install tinyproxy-bin"
            );
            eprintln!("skipping: tinyproxy is not installed (apt-get install tinyproxy-bin)");
            return None;
        };
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_ok() {
                return Some(Self {
                    child,
                    addr,
                    dir,
                    log,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("tinyproxy did not start on {addr}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_real_proxy_tunnels_to_the_upstream_and_its_refusal_is_a_connect_error() {
    let upstream = Upstream::replying(Reply::json(&tollgate_testkit::anthropic::message(
        &Answer::hello(UPSTREAM_MODEL),
    )))
    .await;
    let Some(proxy) = Tinyproxy::start(upstream.addr().port()).await else {
        return;
    };
    let through = |password: &str| {
        let url = format!("http://ops:{password}@{}", proxy.addr);
        provider(ProviderKind::Anthropic, &upstream.root_url(), |settings| {
            settings.proxy = Proxy::Url(url);
        })
    };
    let refused = through("wrong")
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap_err();
    assert!(matches!(refused, ProviderError::Connect(_)), "{refused:?}");
    assert_eq!(
        upstream.hits(),
        0,
        "the upstream was reached around the proxy"
    );
    let answer = through("pr0xy")
        .chat(&request(false), UPSTREAM_MODEL)
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(doc["object"], "chat.completion", "{doc}");
    assert_eq!(upstream.hits(), 1);
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT {} HTTP/1.1", upstream.addr())),
        "{log}"
    );
}
