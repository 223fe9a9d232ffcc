use super::*;

#[test]
fn the_builtin_flow_loads() {
    let flow = Flow::builtin().unwrap_or_else(|e| panic!("{e}"));
    assert!(flow.state_named("main").is_some());
    assert_eq!(flow.settings.max_retries, 2);
    assert_eq!(flow.settings.no_input, Duration::from_secs(8));
    let main = &flow.states[flow.settings.main];
    assert_eq!(main.kind, Kind::Menu);
}

#[test]
fn the_flow_files_on_disk_load_like_the_builtin() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let grammars = dir.join("../grammars");
    let flow = Flow::load(&dir.join("flows/hotline.toml"), Some(&grammars))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        flow.states.len(),
        Flow::builtin().expect("builtin").states.len()
    );
}
