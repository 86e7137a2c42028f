package chaos

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"time"

	"zikao/internal/chsi"
)

// person is a made-up applicant: a valid, unique ID number and a Chinese
// name. Nothing of it is ever logged.
type person struct {
	Name     string
	IDNumber string
	Gender   string
	Birth    time.Time
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔向汤")
	given    = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建文红利春晓雪梅琳斌宇浩凯健俊帆帅旭宁海波峰亮林欣怡佳慧婷倩颖博然")
)

// people makes unique people from a seeded generator.
type people struct {
	rng  *rand.Rand
	seen map[string]bool
}

func newPeople(rng *rand.Rand) *people { return &people{rng: rng, seen: map[string]bool{}} }

// next returns a person with an ID number of the exam area's district,
// one the identity service knows (its sequence is not 999).
func (p *people) next(district string) person { return p.make(district, false) }

// notInRecords returns a person whose ID number has the sequence (digits
// 15–17) 999, which the identity service stand-in does not find in its
// records; the number is valid, its check character computed.
func (p *people) notInRecords(district string) person { return p.make(district, true) }

func (p *people) make(district string, notInRecords bool) person {
	for {
		birth := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, p.rng.IntN(365*30))
		seq := p.rng.IntN(1000)
		if notInRecords {
			seq = 999
		}
		id := withCheckDigit(fmt.Sprintf("%s%s%03d", district, birth.Format("20060102"), seq))
		if p.seen[id] || (!notInRecords && seq == 999) {
			continue
		}
		p.seen[id] = true
		gender := "female"
		if (id[16]-'0')%2 == 1 {
			gender = "male"
		}
		return person{Name: p.name(), IDNumber: id, Gender: gender, Birth: birth}
	}
}

func (p *people) name() string {
	n := []rune{surnames[p.rng.IntN(len(surnames))], given[p.rng.IntN(len(given))]}
	if p.rng.IntN(3) > 0 {
		n = append(n, given[p.rng.IntN(len(given))])
	}
	return string(n)
}

// withCheckDigit appends the GB 11643-1999 check character to 17 digits.
func withCheckDigit(first17 string) string {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(first17[i]-'0') * weights[i]
	}
	return first17 + string("10X98765432"[sum%11])
}

// phone is a made-up mobile number.
func phone(rng *rand.Rand) string { return fmt.Sprintf("13%09d", rng.IntN(1_000_000_000)) }

// diplomaNumber is a made-up 18-digit diploma number.
func diplomaNumber(rng *rand.Rand) string {
	return fmt.Sprintf("10487%04d%09d", 2005+rng.IntN(15), rng.IntN(1_000_000_000))
}

// enrolment is one made-up enrolment record (在籍信息) of a person.
type enrolment struct {
	TicketNumber string
	MajorCode    string
	MajorName    string
	Level        string
	ExamArea     string
	Source       string
}

// enrolmentsCSV writes the records of every enrolled plan as an import file
// of `zikao enrolled import` (internal/enrolled).
func enrolmentsCSV(plans []*plan) ([]byte, int) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"name", "id_number", "ticket_number", "major_code", "major_name", "level", "exam_area_code", "source"})
	n := 0
	for _, p := range plans {
		for _, e := range p.Enrolments {
			_ = w.Write([]string{p.Person.Name, p.Person.IDNumber, e.TicketNumber, e.MajorCode, e.MajorName, e.Level, e.ExamArea, e.Source})
			n++
		}
	}
	w.Flush()
	return buf.Bytes(), n
}

// enrolmentsOf gives an enrolled applicant two records in the exam area: a
// 专升本 one with a ticket number of an old sitting, and a 专科 one whose
// number has the prefix of the current sitting (a number the ticket
// allocator must skip) for every other applicant, else an old one too.
func enrolmentsOf(i int, area string, year, sitting int) []enrolment {
	old := fmt.Sprintf("%s%02d%d%05d", area, 19, 2, 10000+i)
	second := fmt.Sprintf("%s%02d%d%05d", area, 18, 1, 10000+i)
	if i%2 == 0 {
		// Low sequence numbers of the current prefix: new registrations of
		// this run reach them.
		second = fmt.Sprintf("%s%02d%d%05d", area, year%100, sitting, 2+3*(i/2))
	}
	return []enrolment{
		{TicketNumber: old, MajorCode: "120402", MajorName: "行政管理", Level: "zhuanshengben", ExamArea: area, Source: "social"},
		{TicketNumber: second, MajorCode: "590201", MajorName: "行政管理", Level: "zhuanke", ExamArea: area, Source: "system"},
	}
}

// knownDiplomas is what the registry stand-in knows: the demo person and
// every applicant of a "found" plan.
func knownDiplomas(demo []chsi.Diploma, plans []*plan) []chsi.Diploma {
	out := append([]chsi.Diploma(nil), demo...)
	for _, p := range plans {
		if p.Path.Found {
			out = append(out, chsi.Diploma{IDNumber: p.Person.IDNumber, Name: p.Person.Name, DiplomaNumber: p.DiplomaNumber})
		}
	}
	return out
}
