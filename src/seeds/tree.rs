//! A deterministic CART decision-tree classifier (Gini impurity, depth limit).
//!
//! organism's own because linfa-trees 0.7.1 is not deterministic: it sums class frequencies in
//! `std::collections::HashMap` iteration order (randomly seeded per process), so near-tied
//! splits and tied leaf majorities come out differently from run to run. Here ties are broken
//! by order: the first feature and the lowest threshold with the strictly lowest impurity
//! win, and a tied majority goes to the lowest class.

/// A fitted tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Leaf(usize),
    Split {
        feature: usize,
        threshold: f64,
        left: Box<Tree>,
        right: Box<Tree>,
    },
}

impl Tree {
    /// Fits a tree on `rows` (one feature vector each) with labels `0..classes`.
    pub fn fit(rows: &[Vec<f64>], labels: &[usize], classes: usize, max_depth: usize) -> Tree {
        let idx: Vec<usize> = (0..rows.len()).collect();
        grow(rows, labels, classes, idx, max_depth)
    }

    /// The class of one feature vector.
    pub fn predict(&self, x: &[f64]) -> usize {
        match self {
            Tree::Leaf(c) => *c,
            Tree::Split {
                feature,
                threshold,
                left,
                right,
            } => {
                if x[*feature] <= *threshold {
                    left.predict(x)
                } else {
                    right.predict(x)
                }
            }
        }
    }
}

fn counts(labels: &[usize], idx: &[usize], classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for &i in idx {
        c[labels[i]] += 1;
    }
    c
}

fn majority(c: &[usize]) -> usize {
    let mut best = 0;
    for (k, &v) in c.iter().enumerate() {
        if v > c[best] {
            best = k;
        }
    }
    best
}

/// Gini impurity times the number of samples: `n − Σ c²/n`.
fn weighted_gini(c: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    n - c.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / n
}

fn grow(
    rows: &[Vec<f64>],
    labels: &[usize],
    classes: usize,
    idx: Vec<usize>,
    depth: usize,
) -> Tree {
    let total = counts(labels, &idx, classes);
    let n = idx.len();
    let parent = weighted_gini(&total, n);
    if depth == 0 || n < 2 || parent <= 0.0 {
        return Tree::Leaf(majority(&total));
    }
    let n_features = rows[idx[0]].len();
    let mut best: Option<(f64, usize, f64)> = None; // (impurity, feature, threshold)
    let mut order = idx.clone();
    for f in 0..n_features {
        order.sort_by(|&a, &b| rows[a][f].total_cmp(&rows[b][f]).then(a.cmp(&b)));
        let mut left = vec![0usize; classes];
        let mut right = total.clone();
        for k in 0..n - 1 {
            let lab = labels[order[k]];
            left[lab] += 1;
            right[lab] -= 1;
            let (v, next) = (rows[order[k]][f], rows[order[k + 1]][f]);
            if v == next {
                continue;
            }
            let imp = weighted_gini(&left, k + 1) + weighted_gini(&right, n - k - 1);
            if best.is_none_or(|(b, _, _)| imp < b) {
                best = Some((imp, f, v + (next - v) / 2.0));
            }
        }
    }
    match best {
        Some((imp, feature, threshold)) if imp < parent => {
            let (l, r): (Vec<usize>, Vec<usize>) = idx
                .into_iter()
                .partition(|&i| rows[i][feature] <= threshold);
            Tree::Split {
                feature,
                threshold,
                left: Box::new(grow(rows, labels, classes, l, depth - 1)),
                right: Box::new(grow(rows, labels, classes, r, depth - 1)),
            }
        }
        _ => Tree::Leaf(majority(&total)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_separable_data_exactly() {
        // Class is 1 when x0 > 2.5; x1 is noise.
        let rows: Vec<Vec<f64>> = (0..6).map(|i| vec![i as f64, (i * 7 % 5) as f64]).collect();
        let labels = [0, 0, 0, 1, 1, 1];
        let t = Tree::fit(&rows, &labels, 2, 3);
        assert_eq!(
            t,
            Tree::Split {
                feature: 0,
                threshold: 2.5,
                left: Box::new(Tree::Leaf(0)),
                right: Box::new(Tree::Leaf(1)),
            }
        );
        assert_eq!(t.predict(&[10.0, 0.0]), 1);
        assert_eq!(t.predict(&[-1.0, 0.0]), 0);
    }

    #[test]
    fn depth_zero_is_the_majority_with_ties_to_the_lowest_class() {
        let rows = vec![vec![0.0], vec![1.0], vec![2.0], vec![3.0]];
        assert_eq!(Tree::fit(&rows, &[2, 1, 2, 1], 3, 0), Tree::Leaf(1));
        assert_eq!(Tree::fit(&rows, &[2, 2, 2, 1], 3, 0), Tree::Leaf(2));
    }
}
