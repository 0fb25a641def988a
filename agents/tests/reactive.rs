//! Target tracking and step scaling, from the behaviour the AWS documentation describes: alarms need
//! consecutive breaching datapoints, cooldowns hold further activities, capacity follows the metric's ratio
//! to the target (target tracking) or the breach's step (step scaling).

use prescale_agents::reactive::{
    Adjustment, Step, StepScaling, StepScalingConfig, TargetTracking, TargetTrackingConfig,
};
use prescale_sim::controller::{Controller, Observation, ScaleDecision};

fn obs(now_s: f64, ready: u32, util: f64) -> Observation {
    Observation {
        now_s,
        interval_s: 60.0,
        busy_server_s: util * (ready * 4) as f64 * 60.0,
        ready_instances: ready,
        provisioning_instances: 0,
        draining_instances: 0,
        servers_per_instance: 4,
        ready_servers: ready * 4,
        ..Observation::default()
    }
}

#[test]
fn target_tracking_scales_out_after_three_datapoints_and_in_after_fifteen() {
    let mut tt = TargetTracking::new(TargetTrackingConfig {
        target_utilisation: 0.5,
        scale_out_datapoints: 3,
        scale_in_datapoints: 15,
        scale_in_fraction: 0.9,
        scale_out_cooldown_s: 300.0,
        scale_in_cooldown_s: 300.0,
        min_instances: 1,
        max_instances: 100,
    });
    // 10 instances at 80 %: the high alarm needs 3 consecutive minutes.
    assert_eq!(tt.decide(&obs(60.0, 10, 0.8)), ScaleDecision::Hold);
    assert_eq!(tt.decide(&obs(120.0, 10, 0.8)), ScaleDecision::Hold);
    // Proportional: ceil(10 · 0.8 / 0.5) = 16.
    assert_eq!(tt.decide(&obs(180.0, 10, 0.8)), ScaleDecision::To { instances: 16 });
    // Low load: scale-in needs 15 datapoints below 90 % of target and the cooldown since the last activity.
    let mut t = 240.0;
    for _ in 0..14 {
        assert_eq!(tt.decide(&obs(t, 16, 0.2)), ScaleDecision::Hold, "at {t}");
        t += 60.0;
    }
    // The 15th: ceil(16 · 0.2 / 0.5) = 7.
    assert_eq!(tt.decide(&obs(t, 16, 0.2)), ScaleDecision::To { instances: 7 });
}

#[test]
fn step_scaling_picks_the_step_of_the_breach_and_respects_the_cooldown() {
    let mut ss = StepScaling::new(StepScalingConfig {
        scale_out_threshold: 0.7,
        scale_out_steps: vec![
            Step { lower: 0.0, upper: Some(0.1), adjustment: Adjustment::ChangeInCapacity(1) },
            Step { lower: 0.1, upper: None, adjustment: Adjustment::PercentChangeInCapacity(50.0) },
        ],
        scale_in_threshold: 0.3,
        scale_in_steps: vec![Step { lower: 0.0, upper: None, adjustment: Adjustment::ChangeInCapacity(2) }],
        cooldown_s: 300.0,
        min_instances: 2,
        max_instances: 20,
    });
    // Breach 0.05: +1.
    assert_eq!(ss.decide(&obs(60.0, 10, 0.75)), ScaleDecision::To { instances: 11 });
    // Within the cooldown nothing happens, whatever the breach.
    assert_eq!(ss.decide(&obs(120.0, 11, 0.99)), ScaleDecision::Hold);
    // After it, breach 0.25: +50 % of 11 = 5 (floored) -> 16.
    assert_eq!(ss.decide(&obs(360.0, 11, 0.95)), ScaleDecision::To { instances: 16 });
    // Between the thresholds: nothing.
    assert_eq!(ss.decide(&obs(700.0, 16, 0.5)), ScaleDecision::Hold);
    // Below the scale-in threshold: -2, and never below min.
    assert_eq!(ss.decide(&obs(1000.0, 16, 0.1)), ScaleDecision::To { instances: 14 });
    assert_eq!(ss.decide(&obs(1400.0, 3, 0.1)), ScaleDecision::To { instances: 2 });
}
