//! A person at a browser: headless Chromium, driven over WebDriver by
//! chromedriver, against `anchor dev` on a private cluster. Needs Debian's
//! `chromium` and `chromium-driver` (`.ci/run` installs them).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn anchor(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_anchor"));
    for var in ["DATABASE_URL", "ANCHOR_DATABASE_URL", "ANCHOR_HTTP_ADDR", "ANCHOR_CONFIG"] {
        command.env_remove(var);
    }
    command.env("ANCHOR_DATA_DIR", data);
    command
}

fn run(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = anchor(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "anchor {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `anchor dev`, its URL and the first-run admin password it printed.
struct Dev {
    child: Option<Child>,
    url: String,
    admin_password: String,
}

impl Dev {
    fn start(data: &std::path::Path) -> Self {
        let mut child = anchor(data)
            .args(["dev", "--http-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut url, mut password) = (None, None);
        while let Some(Ok(line)) = lines.next() {
            if let Some(u) = line.strip_prefix("Anchor is running at ") {
                url = Some(u.trim().to_owned());
            }
            if let Some(p) = line.trim().strip_prefix("password:") {
                password = Some(p.trim().to_owned());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let (Some(url), Some(admin_password)) = (url, password) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("anchor dev did not print its URL and first-run admin password");
        };
        Self { child: Some(child), url, admin_password }
    }

    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal");
        let status = child.wait().expect("wait");
        assert!(status.success());
    }
}

/// On a failed assertion, still stop `anchor dev` (and so its cluster).
impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = child.wait();
        }
    }
}

/// The few WebDriver commands this test needs.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        // Its own process group: on any exit, the driver and every browser
        // process it started go together.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian: apt-get install chromium chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let http = anchor_testkit::http_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,900",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.keep().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Self { driver, base, session, http }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        eprintln!("webdriver: {method} {path}");
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let request = self.http.request(method.clone(), url);
        let request = if method == reqwest::Method::GET { request } else { request.json(&body) };
        let response = request.send().await.expect("webdriver");
        let value: Value = response.json().await.expect("json");
        if value["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", value["value"]);
        }
        value["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (bounded) until the page shows `text`; returns the page.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.source().await;
            if page.contains(text) {
                return page;
            }
            assert!(Instant::now() < deadline, "the page never showed {text:?}:\n{page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, path: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        if let Some(b64) = png.as_str()
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let _ = std::fs::write(path, bytes);
        }
    }

    async fn sign_in(&self, url: &str, username: &str, password: &str) {
        self.go(&format!("{url}/")).await;
        self.wait_for("Sign in").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("button[type=submit]").await;
    }

    async fn quit(self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.driver.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn staff_sign_in_in_a_real_browser() {
    let data = tempfile::Builder::new().prefix("anchor-browser-").tempdir_in("/var/tmp").expect("tempdir");
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dev = Dev::start(data.path());
    run(data.path(), &["workspace", "create", "acme", "--name", "Acme Corp"], None);
    run(data.path(), &["workspace", "create", "globex", "--name", "Globex Inc"], None);
    run(data.path(), &["account", "create", "alice", "--password-stdin"], Some("correct horse battery\n"));
    run(data.path(), &["member", "set", "acme", "alice", "technician", "--local"], None);

    eprintln!("browser test: arranged workspaces and accounts");
    let browser = Browser::start().await;
    eprintln!("browser test: WebDriver session {}", browser.session);
    // A technician sees exactly her workspaces, and nothing is entered for her.
    browser.sign_in(&dev.url, "alice", "correct horse battery").await;
    let page = browser.wait_for("Your workspaces").await;
    browser.screenshot("/tmp/anchor-browser-workspaces.png").await;
    assert!(page.contains("Acme Corp") && page.contains("technician"), "{page}");
    assert!(!page.contains("Globex"), "only her workspaces");

    // Signing out returns to the sign-in form.
    browser.click("header form button").await;
    browser.wait_for("name=\"password\"").await;

    // A form posted without the CSRF binding (as another site would) is refused.
    browser
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": "const f = document.createElement('form'); f.method = 'post'; f.action = '/signin';
                for (const [k, v] of [['username', 'alice'], ['password', 'correct horse battery']]) {
                  const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }
                document.body.appendChild(f); f.submit();", "args": []}),
        )
        .await;
    browser.wait_for("This form has expired").await;

    // Wrong password: a readable error, still signed out.
    browser.sign_in(&dev.url, "alice", "not her password").await;
    browser.wait_for("Wrong username or password.").await;

    // The first-run admin that `anchor dev` printed sees every workspace.
    browser.sign_in(&dev.url, "admin", &dev.admin_password).await;
    let page = browser.wait_for("Your workspaces").await;
    assert!(page.contains("Acme Corp") && page.contains("Globex Inc"), "{page}");

    browser.quit().await;
    dev.stop();
}
