//! The re-roll budget: with an ENT picking uniformly among a parent's children, a login
//! gives up only when every ticket of the budget missed the intended child. A seeded
//! run of the real front-channel plan agrees with that geometric law, and the default
//! budget keeps give-ups under 10⁻⁴ of logins for families of up to four children
//! (`docs/performance.md`, "Re-roll budget").

use crate::support::reroll::{exact_give_up_rate, simulate, Shape};

use bonenfant::config::DEFAULT_RETRY_MAX;

#[test]
fn a_seeded_run_agrees_with_the_geometric_law() {
    for (shape, retry_max) in [
        (
            Shape {
                children: 4,
                in_target: 1,
            },
            3,
        ),
        (
            Shape {
                children: 3,
                in_target: 2,
            },
            4,
        ),
        (
            Shape {
                children: 2,
                in_target: 1,
            },
            2,
        ),
    ] {
        let logins = 10_000;
        let figures = simulate(shape, retry_max, logins, 7);
        let exact = exact_give_up_rate(shape.children, retry_max);
        // Five standard deviations of a binomial proportion: a wrong law is far off.
        let sd = (exact * (1.0 - exact) / logins as f64).sqrt();
        assert!(
            (figures.give_up_rate() - exact).abs() < 5.0 * sd,
            "{shape:?}: simulated {} vs exact {exact}",
            figures.give_up_rate()
        );
        let tickets_bound = retry_max + 1;
        assert!(figures.tickets.iter().all(|&t| t <= tickets_bound));
    }
}

#[test]
fn the_default_budget_gives_up_less_than_once_in_ten_thousand_up_to_four_children() {
    for children in 2..=4 {
        let rate = exact_give_up_rate(children, DEFAULT_RETRY_MAX);
        assert!(rate <= 1e-4, "{children} children: {rate}");
    }
}
