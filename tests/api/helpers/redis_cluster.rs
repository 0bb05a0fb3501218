//! A Redis Cluster of our own: 3 masters and 3 replicas on free ports, to crash and restart.

use super::process::{free_port, scratch_dir, spawn_tied, wait_for_port};
use super::redis::which_redis;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Masters; each gets one replica.
const MASTERS: usize = 3;
/// How long the cluster may take to agree on a full slot map, after a start or a failover.
const OK_WITHIN: Duration = Duration::from_secs(30);

/// Slot ranges and the port of the master serving each.
type SlotMap = Vec<(RangeInclusive<u16>, u16)>;

/// One redis-server of the cluster.
struct Node {
    port: u16,
    /// Its cluster bus port, chosen free too: the default (port + 10000) may be
    /// taken, or past 65535 for a port from the ephemeral range.
    bus_port: u16,
    /// Its data, AOF and nodes.conf: a restart picks up where the crash left it.
    dir: PathBuf,
    /// None while killed.
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let dir = self.dir.to_str().expect("utf-8 temp dir");
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &format!("{dir}/nodes.conf"),
            "--cluster-node-timeout",
            "1000",
            "--cluster-port",
            &self.bus_port.to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            // A replica's first sync starts at once, not 5 s later: until it has
            // synced, it cannot take over from its master.
            "--repl-diskless-sync-delay",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // One log across restarts would be truncated by spawn_tied; keep each run's.
        let log = self.dir.join(format!("redis-{}.log", unix_millis()));
        let mut child = spawn_tied(&which_redis(), &args, &[], &log, false);
        wait_for_port(self.port, &mut child, "redis-server (cluster node)", &log);
        self.child = Some(child);
    }
}

/// A running Redis Cluster: 3 masters and 3 replicas on 127.0.0.1.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Start six nodes, join them with `redis-cli --cluster create`, wait until all is ok.
    pub fn start() -> RedisCluster {
        let mut nodes: Vec<Node> = (0..MASTERS * 2)
            .map(|_| Node {
                port: free_port(),
                bus_port: free_port(),
                dir: scratch_dir(),
                child: None,
            })
            .collect();
        for n in &mut nodes {
            n.spawn();
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(String::from));
        // `timeout`: create waits for the nodes to agree with no limit of its own.
        let out = Command::new("timeout")
            .arg("60")
            .arg("redis-cli")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("All 16384 slots covered"),
            "redis-cli --cluster create failed ({}):\n{text}",
            out.status
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Every node's `127.0.0.1:port`, killed ones too: what a client is given as seeds.
    pub fn seed_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// `redis://127.0.0.1:port/0` of a live node (in cluster mode the gateway takes only the
    /// scheme and credentials from it).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.live_port())
    }

    /// Run a command with `redis-cli -c` on a live node (following MOVED/ASK); its output.
    pub fn cli(&self, args: &[&str]) -> String {
        cli_on(self.live_port(), &["-c"], args)
    }

    /// The keys matching `pattern` on every master (a SCAN reaches one node only), one a line.
    pub fn keys(&self, pattern: &str) -> String {
        let mut keys: Vec<String> = self
            .masters()
            .into_iter()
            .flat_map(|port| {
                cli_on(port, &[], &["--scan", "--pattern", pattern])
                    .lines()
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort();
        keys.join("\n")
    }

    /// The port of the master serving `key`'s slot, as a live node sees the cluster now.
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.live_port();
        let slot: u16 = cli_on(port, &[], &["CLUSTER", "KEYSLOT", key])
            .parse()
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT {key}: {e}"));
        slot_owners(port)
            .into_iter()
            .find(|(range, _)| range.contains(&slot))
            .map(|(_, owner)| owner)
            .unwrap_or_else(|| panic!("no master serves slot {slot} ({key})"))
    }

    /// SIGKILL the node on `port`, as a crash: no AOF rewrite, no failover handshake.
    pub fn kill(&mut self, port: u16) {
        let node = self.node(port);
        let mut child = node.child.take().expect("the node is running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Start the killed node on `port` again, on its own data and nodes.conf.
    pub fn restart(&mut self, port: u16) {
        let node = self.node(port);
        assert!(node.child.is_none(), "node {port} is still running");
        node.spawn();
    }

    /// Wait until every live node says `cluster_state:ok` with all 16384 slots ok, they agree
    /// on which live master serves each slot, and every replica has synced with its master;
    /// panic naming what is missing.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + OK_WITHIN;
        loop {
            let Some(problem) = self.not_ok() else { return };
            assert!(
                Instant::now() < deadline,
                "the cluster is not ok after {OK_WITHIN:?}: {problem}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Why the cluster is not (yet) ok, or None.
    fn not_ok(&self) -> Option<String> {
        let live = self.live_ports();
        let mut first_map: Option<(u16, SlotMap)> = None;
        for &port in &live {
            let info = cli_on(port, &[], &["CLUSTER", "INFO"]);
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return Some(format!("node {port} says:\n{info}"));
            }
            // A node can say ok while it still counts a dead master as the owner of its
            // slots (before it is flagged as failing): the owners must all be alive.
            let mut map = slot_owners(port);
            map.sort_by_key(|(r, _)| *r.start());
            if let Some((_, owner)) = map.iter().find(|(_, o)| !live.contains(o)) {
                return Some(format!("node {port} has dead node {owner} serving slots"));
            }
            // A replica that never synced cannot be promoted: a kill then leaves slots uncovered.
            let replication = cli_on(port, &[], &["INFO", "replication"]);
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return Some(format!("replica {port} has not synced:\n{replication}"));
            }
            match &first_map {
                None => first_map = Some((port, map)),
                Some((other, m)) if *m != map => {
                    return Some(format!(
                        "nodes {other} and {port} disagree on the slot map: {m:?} vs {map:?}"
                    ))
                }
                Some(_) => {}
            }
        }
        None
    }

    /// The masters serving slots, as a live node sees them.
    fn masters(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = slot_owners(self.live_port())
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    fn live_port(&self) -> u16 {
        *self.live_ports().first().expect("a live node")
    }

    fn node(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// `redis-cli -p port <opts> <args>`, its output trimmed.
fn cli_on(port: u16, opts: &[&str], args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(opts)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Slot ranges and the port of the master serving each, from `CLUSTER NODES` on `port`:
/// masters not flagged as failing (a failed one keeps its slots in the list until a
/// replica takes over).
fn slot_owners(port: u16) -> SlotMap {
    let mut owners = vec![];
    for line in cli_on(port, &[], &["CLUSTER", "NODES"]).lines() {
        // <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
            continue;
        }
        let node_port: u16 = f[1]
            .split(['@', ','])
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("CLUSTER NODES line: {line}"));
        // `[slot->-id]` entries are migrations in progress, not ownership.
        for s in f[8..].iter().filter(|s| !s.starts_with('[')) {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            let range = a.parse().expect("slot")..=b.parse().expect("slot");
            owners.push((range, node_port));
        }
    }
    owners
}

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
}
