fn main() {
    let f = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let ck = organism::evolution::checkpoint::read(&f).unwrap();
    let c = organism::evolution::checkpoint::read_cache(&f, ck.cache).unwrap();
    let mut v: Vec<(f64, bool)> = c.values().map(|e| (e.sharpe(), e.feasible())).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize].0;
    println!(
        "n {} feasible {} q0 {:.2} q05 {:.2} q25 {:.2} q50 {:.2} q75 {:.2} q95 {:.2} q100 {:.2}",
        v.len(),
        v.iter().filter(|x| x.1).count(),
        q(0.0),
        q(0.05),
        q(0.25),
        q(0.5),
        q(0.75),
        q(0.95),
        q(1.0)
    );
    let fv: Vec<f64> = v.iter().filter(|x| x.1).map(|x| x.0).collect();
    let m = fv.iter().sum::<f64>() / fv.len() as f64;
    let var = fv.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (fv.len() - 1) as f64;
    println!("feasible var {var:.3}");
}
