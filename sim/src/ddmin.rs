//! Delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing Input",
//! TSE 2002): the `ddmin` algorithm, generic over what is reduced (`shrink` uses it on a
//! seed's faults, on a partition's groups, on a clog's nodes).
//!
//! Each round splits the current list into `n` chunks and asks whether one chunk alone, or the
//! list without one chunk, still fails; the first that does (in a fixed order: the chunks, then
//! the complements) becomes the list. With none, the chunks are halved, until they are single
//! items: the result is 1-minimal (removing any one item makes it pass). A round's candidates are
//! handed to the test together, so that it can run them in parallel; taking the first failing
//! one in their order keeps the result independent of which run finishes first.

/// Reduces `items` to a 1-minimal failing sublist (order kept). `test` gets a round's
/// candidates and answers the index of the first one that still fails, or `None` (none does,
/// or the test's budget is spent: the reduction stops there). `items` itself is taken to fail.
pub fn ddmin<T: Clone>(items: &[T], test: &mut dyn FnMut(&[Vec<T>]) -> Option<usize>) -> Vec<T> {
    let mut cur = items.to_vec();
    let mut n = 2usize;
    while cur.len() >= 2 {
        let chunks = split(cur.len(), n);
        let mut candidates: Vec<Vec<T>> = chunks.iter().map(|r| cur[r.clone()].to_vec()).collect();
        // With two chunks each complement is the other chunk: nothing new to ask.
        let complements = n > 2;
        if complements {
            for r in &chunks {
                let rest: Vec<T> = cur
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !r.contains(i))
                    .map(|(_, x)| x.clone())
                    .collect();
                candidates.push(rest);
            }
        }
        match test(&candidates) {
            Some(i) if i < chunks.len() => {
                cur = candidates.swap_remove(i);
                n = 2;
            }
            Some(i) => {
                cur = candidates.swap_remove(i);
                n = (n - 1).max(2);
            }
            None if n < cur.len() => n = (2 * n).min(cur.len()),
            None => break,
        }
    }
    cur
}

/// `len` items cut into `n` contiguous chunks of nearly equal size (the first ones longer).
fn split(len: usize, n: usize) -> Vec<std::ops::Range<usize>> {
    let n = n.clamp(1, len.max(1));
    (0..n).map(|k| (k * len / n)..((k + 1) * len / n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test that fails when every item of `needed` is present, counting the candidates asked.
    fn reduce(items: &[u32], needed: &[u32]) -> (Vec<u32>, usize) {
        let mut asked = 0;
        let out = ddmin(items, &mut |cands| {
            asked += cands.len();
            cands
                .iter()
                .position(|c| needed.iter().all(|x| c.contains(x)))
        });
        (out, asked)
    }

    #[test]
    fn finds_the_items_that_matter() {
        let items: Vec<u32> = (0..72).collect();
        let (out, asked) = reduce(&items, &[3, 40, 41, 70]);
        assert_eq!(out, vec![3, 40, 41, 70]);
        // Far fewer questions than the 2^72 subsets, and than 72² single removals.
        assert!(asked < 72 * 8, "{asked}");
        assert_eq!(reduce(&items, &[17]).0, vec![17]);
        assert_eq!(reduce(&[5], &[5]).0, vec![5]);
        assert_eq!(reduce(&[], &[]).0, Vec::<u32>::new());
    }

    #[test]
    fn result_is_one_minimal_and_ordered() {
        // Fails when at least two even numbers are present: any two do.
        let items: Vec<u32> = (0..20).collect();
        let out = ddmin(&items, &mut |cands| {
            cands
                .iter()
                .position(|c| c.iter().filter(|x| *x % 2 == 0).count() >= 2)
        });
        assert_eq!(out.len(), 2);
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        assert!(out.iter().all(|x| x % 2 == 0));
    }

    #[test]
    fn a_spent_budget_stops_the_reduction() {
        let items: Vec<u32> = (0..16).collect();
        let mut rounds = 0;
        let out = ddmin(&items, &mut |cands| {
            rounds += 1;
            if rounds > 1 {
                return None;
            }
            cands.iter().position(|c| c.contains(&3))
        });
        // One accepted round (the first half), then nothing more.
        assert_eq!(out, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn split_covers_every_item_once() {
        for len in 1..30 {
            for n in 1..=len {
                let s = split(len, n);
                assert_eq!(s.len(), n);
                assert_eq!(s[0].start, 0);
                assert_eq!(s[n - 1].end, len);
                assert!(s.windows(2).all(|w| w[0].end == w[1].start));
                assert!(s.iter().all(|r| !r.is_empty()));
            }
        }
    }
}
