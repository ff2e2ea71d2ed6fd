//! Sorting for the short lists a board config yields (phandles, SPIs, memory holes): an
//! insertion sort. `core`'s sorts are built for large inputs and bring some 7 KB of code into
//! the hypervisor image; these lists have tens of entries.

/// Sorts `v` by `key`, stably: O(n²), for short lists only.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Sorts `v`: O(n²), for short lists only.
pub fn sort<T: Ord + Copy>(v: &mut [T]) {
    sort_by_key(v, |x| *x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_core() {
        let mut seed = 12345u64;
        for len in 0..40 {
            let mut v: alloc::vec::Vec<(u8, usize)> = (0..len)
                .map(|i| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((seed >> 60) as u8, i)
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_by_key(|x| x.0);
            sort_by_key(&mut v, |x| x.0);
            assert_eq!(v, expected, "stable, like slice::sort_by_key");
            let mut w: alloc::vec::Vec<u8> = v.iter().map(|x| x.0).rev().collect();
            sort(&mut w);
            assert!(w.windows(2).all(|p| p[0] <= p[1]));
        }
    }
}
