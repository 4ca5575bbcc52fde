//! TEMPORARY stub of the simulator interface.
use std::sync::Arc;
use std::net::SocketAddr;
#[derive(Clone, Debug, Default)]
pub struct FaultSpec;
impl FaultSpec { pub fn parse(_s: &str) -> Result<FaultSpec, String> { Ok(FaultSpec) } }
pub struct SimOptions { pub secret: Option<String>, pub faults: FaultSpec, pub clock: crate::clock::Clock, pub token_ttl_secs: u64, pub classic_grace_secs: u64 }
impl Default for SimOptions { fn default() -> Self { SimOptions { secret: None, faults: FaultSpec, clock: crate::clock::Clock::system(), token_ttl_secs: 7200, classic_grace_secs: 300 } } }
pub struct SimStats;
impl SimStats { pub fn datacube_requests(&self) -> usize { 0 } }
pub struct Simulator { pub addr: SocketAddr, pub stats: Arc<SimStats> }
impl Simulator {
    pub async fn start(listen: SocketAddr, _opts: SimOptions) -> std::io::Result<Simulator> { Ok(Simulator { addr: listen, stats: Arc::new(SimStats) }) }
    pub fn base_url(&self) -> String { format!("http://{}", self.addr) }
    pub async fn stop(self) {}
}
pub async fn run(_l: tokio::net::TcpListener, _o: SimOptions, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> { shutdown.await; Ok(()) }
