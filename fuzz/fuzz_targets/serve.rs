//! Serve configs: any text through the reader and validation `prescale serve` and `prescale validate` use. No
//! input may panic; an accepted config builds its decider (the controller, as the server would at start-up)
//! and serialises back to a config that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/live/fuzz.ron");
    if let Ok(loaded) = prescale::live::config::load_serve_text(&file, text) {
        let cfg = loaded.config;
        // Built as at start-up, except controllers that start a child process the input names.
        use prescale_agents::{ControllerConfig, PredictiveConfig, PredictorConfig};
        let spawns = matches!(
            &cfg.controller,
            ControllerConfig::External(_)
                | ControllerConfig::Predictive(PredictiveConfig { predictor: PredictorConfig::External { .. }, .. })
        );
        if !spawns {
            let _ = prescale::live::decider::Decider::new(&cfg, 1.7e9);
        }
        let again = prescale::live::config::load_serve_text(&file, &cfg.to_ron()).expect("a written config reads back");
        assert_eq!(again.config, cfg);
    }
});
